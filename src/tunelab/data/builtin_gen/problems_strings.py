"""basic-python problems, part 1: arithmetic warm-ups and strings.

Format of each block (parsed by `basic_python.parse_blocks`):

    ### <entry_point> | <topic>
    <one-line task in plain English>
    <imports, then the function: signature, docstring with examples, body>
    ---
    <asserts on `candidate`, one per line>

The prompt is everything up to the end of the docstring; the body is the canonical solution.
New problems go at the end of the last part (`problems_parsing`), so that task ids stay stable.
"""

SOURCE = r'''
### add_three | math
Write a function which adds 3 numbers and returns the result.
def add_three(a: int, b: int, c: int) -> int:
    """Return the sum of the three numbers a, b and c.

    >>> add_three(1, 2, 3)
    6
    >>> add_three(-5, 10, 0)
    5
    """
    return a + b + c
---
assert candidate(1, 2, 3) == 6
assert candidate(0, 0, 0) == 0
assert candidate(-5, 10, 0) == 5
assert candidate(100, 200, 300) == 600
assert candidate(-1, -2, -3) == -6
assert candidate(7, -7, 1) == 1

### reverse_string | strings
Write a function that returns a string reversed, without using slicing.
def reverse_string(s: str) -> str:
    """Return the characters of s in reverse order.

    >>> reverse_string("hello")
    'olleh'
    >>> reverse_string("")
    ''
    """
    result = ""
    for ch in s:
        result = ch + result
    return result
---
assert candidate("hello") == "olleh"
assert candidate("") == ""
assert candidate("a") == "a"
assert candidate("ab") == "ba"
assert candidate("racecar") == "racecar"
assert candidate("Python 3") == "3 nohtyP"

### count_vowels | strings
Write a function that counts the vowels (a, e, i, o, u, either case) in a string.
def count_vowels(s: str) -> int:
    """Return how many characters of s are vowels (a, e, i, o, u; upper or lower case).

    >>> count_vowels("hello")
    2
    >>> count_vowels("AEIOU xyz")
    5
    """
    count = 0
    for ch in s.lower():
        if ch in "aeiou":
            count += 1
    return count
---
assert candidate("hello") == 2
assert candidate("") == 0
assert candidate("AEIOU xyz") == 5
assert candidate("rhythm") == 0
assert candidate("Programming is fun") == 5
assert candidate("aaa") == 3

### is_palindrome | strings
Write a function that checks whether a string is a palindrome, ignoring case and any character that is not a letter or digit.
def is_palindrome(s: str) -> bool:
    """Return True if s reads the same forwards and backwards, looking only at letters and
    digits and ignoring case.

    >>> is_palindrome("A man, a plan, a canal: Panama")
    True
    >>> is_palindrome("hello")
    False
    """
    cleaned = [ch.lower() for ch in s if ch.isalnum()]
    i, j = 0, len(cleaned) - 1
    while i < j:
        if cleaned[i] != cleaned[j]:
            return False
        i += 1
        j -= 1
    return True
---
assert candidate("A man, a plan, a canal: Panama") is True
assert candidate("hello") is False
assert candidate("") is True
assert candidate("x") is True
assert candidate("No 'x' in Nixon") is True
assert candidate("ab") is False
assert candidate("abca") is False
assert candidate("12321") is True

### capitalize_words | strings
Write a function that capitalizes the first letter of every word in a sentence.
def capitalize_words(sentence: str) -> str:
    """Return the sentence with the first letter of every space-separated word in upper case
    and the other letters unchanged. Spaces are kept as they are.

    >>> capitalize_words("hello world")
    'Hello World'
    >>> capitalize_words("python is FUN")
    'Python Is FUN'
    """
    result = []
    previous = " "
    for ch in sentence:
        if previous == " ":
            result.append(ch.upper())
        else:
            result.append(ch)
        previous = ch
    return "".join(result)
---
assert candidate("hello world") == "Hello World"
assert candidate("python is FUN") == "Python Is FUN"
assert candidate("") == ""
assert candidate("a") == "A"
assert candidate("  two  spaces") == "  Two  Spaces"
assert candidate("x y z") == "X Y Z"

### count_words | strings
Write a function that counts the words in a string, where words are separated by any amount of whitespace.
def count_words(text: str) -> int:
    """Return the number of words in text; words are separated by runs of whitespace.

    >>> count_words("the quick  brown fox")
    4
    >>> count_words("   ")
    0
    """
    count = 0
    in_word = False
    for ch in text:
        if ch.isspace():
            in_word = False
        elif not in_word:
            in_word = True
            count += 1
    return count
---
assert candidate("the quick  brown fox") == 4
assert candidate("   ") == 0
assert candidate("") == 0
assert candidate("one") == 1
assert candidate("  leading and trailing  ") == 3
assert candidate("tabs\tand\nnewlines") == 3

### longest_word | strings
Write a function that returns the longest word of a sentence (the first one if there is a tie).
def longest_word(sentence: str) -> str:
    """Return the longest whitespace-separated word in sentence; on a tie, the one that comes
    first. Return "" for a sentence without words.

    >>> longest_word("I love programming")
    'programming'
    >>> longest_word("cat dog")
    'cat'
    """
    best = ""
    for word in sentence.split():
        if len(word) > len(best):
            best = word
    return best
---
assert candidate("I love programming") == "programming"
assert candidate("cat dog") == "cat"
assert candidate("") == ""
assert candidate("a bb ccc dd") == "ccc"
assert candidate("same size word") == "same"
assert candidate("tiny enormous") == "enormous"

### remove_duplicate_chars | strings
Write a function that removes repeated characters from a string, keeping only the first occurrence of each.
def remove_duplicate_chars(s: str) -> str:
    """Return s with every character after its first occurrence removed.

    >>> remove_duplicate_chars("banana")
    'ban'
    >>> remove_duplicate_chars("abc")
    'abc'
    """
    seen = set()
    result = []
    for ch in s:
        if ch not in seen:
            seen.add(ch)
            result.append(ch)
    return "".join(result)
---
assert candidate("banana") == "ban"
assert candidate("abc") == "abc"
assert candidate("") == ""
assert candidate("aaaa") == "a"
assert candidate("mississippi") == "misp"
assert candidate("AaBb") == "AaBb"

### char_frequency | strings
Write a function that counts how many times each character appears in a string and returns a dictionary.
def char_frequency(s: str) -> dict:
    """Return a dict mapping each character of s to the number of times it occurs.

    >>> char_frequency("hello")
    {'h': 1, 'e': 1, 'l': 2, 'o': 1}
    >>> char_frequency("")
    {}
    """
    counts = {}
    for ch in s:
        counts[ch] = counts.get(ch, 0) + 1
    return counts
---
assert candidate("hello") == {"h": 1, "e": 1, "l": 2, "o": 1}
assert candidate("") == {}
assert candidate("aaa") == {"a": 3}
assert candidate("abab") == {"a": 2, "b": 2}
assert candidate("a b") == {"a": 1, " ": 1, "b": 1}

### is_anagram | strings
Write a function that checks whether two words are anagrams of each other (case-insensitive).
def is_anagram(a: str, b: str) -> bool:
    """Return True if a and b contain the same letters the same number of times, ignoring case.

    >>> is_anagram("listen", "silent")
    True
    >>> is_anagram("apple", "paple")
    True
    >>> is_anagram("abc", "abd")
    False
    """
    if len(a) != len(b):
        return False
    counts = {}
    for ch in a.lower():
        counts[ch] = counts.get(ch, 0) + 1
    for ch in b.lower():
        if counts.get(ch, 0) == 0:
            return False
        counts[ch] -= 1
    return True
---
assert candidate("listen", "silent") is True
assert candidate("apple", "paple") is True
assert candidate("abc", "abd") is False
assert candidate("", "") is True
assert candidate("Dormitory", "dirtyroom") is True
assert candidate("aab", "abb") is False
assert candidate("abc", "abcd") is False

### caesar_shift | strings
Write a function that applies a Caesar cipher: shift every letter by k places in the alphabet, wrapping around, keeping case and leaving other characters unchanged.
def caesar_shift(text: str, k: int) -> str:
    """Shift every letter of text k places forward in the alphabet (wrapping from z to a),
    keeping its case; other characters are unchanged. k may be negative or larger than 26.

    >>> caesar_shift("abc xyz", 3)
    'def abc'
    >>> caesar_shift("Hello, World!", 1)
    'Ifmmp, Xpsme!'
    """
    result = []
    for ch in text:
        if "a" <= ch <= "z":
            result.append(chr((ord(ch) - ord("a") + k) % 26 + ord("a")))
        elif "A" <= ch <= "Z":
            result.append(chr((ord(ch) - ord("A") + k) % 26 + ord("A")))
        else:
            result.append(ch)
    return "".join(result)
---
assert candidate("abc xyz", 3) == "def abc"
assert candidate("Hello, World!", 1) == "Ifmmp, Xpsme!"
assert candidate("", 5) == ""
assert candidate("abc", 26) == "abc"
assert candidate("def", -3) == "abc"
assert candidate("Zz", 2) == "Bb"
assert candidate("a1b2", 27) == "b1c2"
assert candidate("AaZz", 1) == "BbAa"

### run_length_encode | strings
Write a function that compresses a string with run-length encoding: each run of the same character becomes the character followed by the run length.
def run_length_encode(s: str) -> str:
    """Encode s by replacing each run of equal characters with the character followed by the
    length of the run.

    >>> run_length_encode("aaabcc")
    'a3b1c2'
    >>> run_length_encode("")
    ''
    """
    if not s:
        return ""
    parts = []
    current = s[0]
    count = 1
    for ch in s[1:]:
        if ch == current:
            count += 1
        else:
            parts.append(current + str(count))
            current = ch
            count = 1
    parts.append(current + str(count))
    return "".join(parts)
---
assert candidate("aaabcc") == "a3b1c2"
assert candidate("") == ""
assert candidate("a") == "a1"
assert candidate("abc") == "a1b1c1"
assert candidate("zzzzzzzzzzzz") == "z12"
assert candidate("aabbaa") == "a2b2a2"

### run_length_decode | strings
Write a function that decodes a run-length encoded string such as "a3b1" back to "aaab"; counts can have several digits.
def run_length_decode(s: str) -> str:
    """Decode a string made of letter-count pairs (the count may have several digits) by
    repeating each letter count times.

    >>> run_length_decode("a3b1c2")
    'aaabcc'
    >>> run_length_decode("x10")
    'xxxxxxxxxx'
    """
    result = []
    i = 0
    while i < len(s):
        letter = s[i]
        i += 1
        start = i
        while i < len(s) and s[i].isdigit():
            i += 1
        result.append(letter * int(s[start:i]))
    return "".join(result)
---
assert candidate("a3b1c2") == "aaabcc"
assert candidate("x10") == "xxxxxxxxxx"
assert candidate("") == ""
assert candidate("a1") == "a"
assert candidate("a2b2a2") == "aabbaa"
assert candidate("q12r1") == "q" * 12 + "r"

### count_substring | strings
Write a function that counts how many times a substring occurs in a string, counting overlapping occurrences.
def count_substring(s: str, sub: str) -> int:
    """Return the number of positions at which sub occurs in s, overlaps included.
    sub is never empty.

    >>> count_substring("aaaa", "aa")
    3
    >>> count_substring("hello world", "o")
    2
    """
    count = 0
    for i in range(len(s) - len(sub) + 1):
        if s[i:i + len(sub)] == sub:
            count += 1
    return count
---
assert candidate("aaaa", "aa") == 3
assert candidate("hello world", "o") == 2
assert candidate("abc", "abcd") == 0
assert candidate("", "a") == 0
assert candidate("abababa", "aba") == 3
assert candidate("abc", "abc") == 1
assert candidate("xyz", "q") == 0

### snake_to_camel | strings
Write a function that converts a snake_case identifier to camelCase.
def snake_to_camel(name: str) -> str:
    """Convert snake_case to camelCase: remove the underscores and capitalize the first letter
    of every part except the first. Parts are non-empty.

    >>> snake_to_camel("hello_world")
    'helloWorld'
    >>> snake_to_camel("parse_http_response")
    'parseHttpResponse'
    """
    parts = name.split("_")
    result = parts[0]
    for part in parts[1:]:
        result += part[0].upper() + part[1:]
    return result
---
assert candidate("hello_world") == "helloWorld"
assert candidate("parse_http_response") == "parseHttpResponse"
assert candidate("single") == "single"
assert candidate("a_b_c") == "aBC"
assert candidate("get_x") == "getX"

### camel_to_snake | strings
Write a function that converts a camelCase identifier to snake_case.
def camel_to_snake(name: str) -> str:
    """Convert camelCase to snake_case: every upper-case letter becomes an underscore followed
    by the letter in lower case. The name starts with a lower-case letter.

    >>> camel_to_snake("helloWorld")
    'hello_world'
    >>> camel_to_snake("parseHttpResponse")
    'parse_http_response'
    """
    result = []
    for ch in name:
        if ch.isupper():
            result.append("_")
            result.append(ch.lower())
        else:
            result.append(ch)
    return "".join(result)
---
assert candidate("helloWorld") == "hello_world"
assert candidate("parseHttpResponse") == "parse_http_response"
assert candidate("single") == "single"
assert candidate("aBC") == "a_b_c"
assert candidate("getX") == "get_x"

### is_pangram | strings
Write a function that checks whether a sentence uses every letter of the English alphabet at least once.
def is_pangram(sentence: str) -> bool:
    """Return True if every letter from a to z appears in sentence (in either case).

    >>> is_pangram("The quick brown fox jumps over the lazy dog")
    True
    >>> is_pangram("Hello world")
    False
    """
    letters = set()
    for ch in sentence.lower():
        if "a" <= ch <= "z":
            letters.add(ch)
    return len(letters) == 26
---
assert candidate("The quick brown fox jumps over the lazy dog") is True
assert candidate("Hello world") is False
assert candidate("") is False
assert candidate("abcdefghijklmnopqrstuvwxyz") is True
assert candidate("ABCDEFGHIJKLMNOPQRSTUVWXY") is False
assert candidate("Pack my box with five dozen liquor jugs!") is True

### first_unique_char | strings
Write a function that returns the index of the first character that occurs only once in a string, or -1 if there is none.
def first_unique_char(s: str) -> int:
    """Return the index of the first character of s that appears exactly once, or -1.

    >>> first_unique_char("leetcode")
    0
    >>> first_unique_char("aabbc")
    4
    >>> first_unique_char("aabb")
    -1
    """
    counts = {}
    for ch in s:
        counts[ch] = counts.get(ch, 0) + 1
    for i, ch in enumerate(s):
        if counts[ch] == 1:
            return i
    return -1
---
assert candidate("leetcode") == 0
assert candidate("aabbc") == 4
assert candidate("aabb") == -1
assert candidate("") == -1
assert candidate("loveleetcode") == 2
assert candidate("z") == 0

### common_prefix | strings
Write a function that finds the longest common prefix of a list of words.
def common_prefix(words: list) -> str:
    """Return the longest string that every word in words starts with ("" for an empty list).

    >>> common_prefix(["flower", "flow", "flight"])
    'fl'
    >>> common_prefix(["dog", "car"])
    ''
    """
    if not words:
        return ""
    prefix = words[0]
    for word in words[1:]:
        i = 0
        while i < len(prefix) and i < len(word) and prefix[i] == word[i]:
            i += 1
        prefix = prefix[:i]
    return prefix
---
assert candidate(["flower", "flow", "flight"]) == "fl"
assert candidate(["dog", "car"]) == ""
assert candidate([]) == ""
assert candidate(["alone"]) == "alone"
assert candidate(["same", "same"]) == "same"
assert candidate(["interview", "internet", "interval"]) == "inter"
assert candidate(["ab", "a"]) == "a"

### reverse_words | strings
Write a function that reverses the order of the words in a sentence.
def reverse_words(sentence: str) -> str:
    """Return the words of sentence in reverse order, joined by single spaces.

    >>> reverse_words("the sky is blue")
    'blue is sky the'
    >>> reverse_words("  hello   world ")
    'world hello'
    """
    words = sentence.split()
    result = []
    for i in range(len(words) - 1, -1, -1):
        result.append(words[i])
    return " ".join(result)
---
assert candidate("the sky is blue") == "blue is sky the"
assert candidate("  hello   world ") == "world hello"
assert candidate("") == ""
assert candidate("one") == "one"
assert candidate("a b c d") == "d c b a"

### is_balanced | strings
Write a function that checks whether the brackets (), [] and {} in a string are balanced and properly nested.
def is_balanced(s: str) -> bool:
    """Return True if every bracket in s ((), [] or {}) is closed by the matching bracket in
    the right order. Other characters are ignored.

    >>> is_balanced("([]{})")
    True
    >>> is_balanced("([)]")
    False
    """
    pairs = {")": "(", "]": "[", "}": "{"}
    stack = []
    for ch in s:
        if ch in "([{":
            stack.append(ch)
        elif ch in pairs:
            if not stack or stack[-1] != pairs[ch]:
                return False
            stack.pop()
    return len(stack) == 0
---
assert candidate("([]{})") is True
assert candidate("([)]") is False
assert candidate("") is True
assert candidate("(") is False
assert candidate(")(") is False
assert candidate("f(a[1], {2: 3})") is True
assert candidate("((())") is False
assert candidate("}") is False

### compress_spaces | strings
Write a function that replaces every run of spaces in a string by a single space and strips spaces at both ends.
def compress_spaces(text: str) -> str:
    """Return text with each run of spaces replaced by one space and no leading or trailing
    spaces.

    >>> compress_spaces("  too   many    spaces ")
    'too many spaces'
    >>> compress_spaces("ok")
    'ok'
    """
    result = []
    for ch in text:
        if ch == " " and (not result or result[-1] == " "):
            continue
        result.append(ch)
    if result and result[-1] == " ":
        result.pop()
    return "".join(result)
---
assert candidate("  too   many    spaces ") == "too many spaces"
assert candidate("ok") == "ok"
assert candidate("") == ""
assert candidate("     ") == ""
assert candidate("a b") == "a b"
assert candidate(" x  y ") == "x y"

### swap_case | strings
Write a function that swaps upper-case and lower-case letters in a string without using str.swapcase.
def swap_case(s: str) -> str:
    """Return s with lower-case letters made upper-case and upper-case letters made
    lower-case; other characters are unchanged.

    >>> swap_case("Hello World")
    'hELLO wORLD'
    >>> swap_case("abc123")
    'ABC123'
    """
    result = ""
    for ch in s:
        if ch.islower():
            result += ch.upper()
        elif ch.isupper():
            result += ch.lower()
        else:
            result += ch
    return result
---
assert candidate("Hello World") == "hELLO wORLD"
assert candidate("abc123") == "ABC123"
assert candidate("") == ""
assert candidate("ALL CAPS") == "all caps"
assert candidate("MiXeD!") == "mIxEd!"

### acronym | strings
Write a function that builds an acronym from the first letters of the words of a phrase, in upper case.
def acronym(phrase: str) -> str:
    """Return the upper-cased first letters of the words of phrase. Words are separated by
    spaces or hyphens.

    >>> acronym("portable network graphics")
    'PNG'
    >>> acronym("Complementary metal-oxide semiconductor")
    'CMOS'
    """
    words = phrase.replace("-", " ").split()
    letters = ""
    for word in words:
        letters += word[0].upper()
    return letters
---
assert candidate("portable network graphics") == "PNG"
assert candidate("Complementary metal-oxide semiconductor") == "CMOS"
assert candidate("") == ""
assert candidate("as soon as possible") == "ASAP"
assert candidate("x") == "X"

### count_upper_lower | strings
Write a function that counts the upper-case and the lower-case letters in a string and returns both counts.
def count_upper_lower(s: str) -> tuple:
    """Return a tuple (number of upper-case letters, number of lower-case letters) in s.

    >>> count_upper_lower("Hello World")
    (2, 8)
    >>> count_upper_lower("123")
    (0, 0)
    """
    upper = 0
    lower = 0
    for ch in s:
        if ch.isupper():
            upper += 1
        elif ch.islower():
            lower += 1
    return (upper, lower)
---
assert candidate("Hello World") == (2, 8)
assert candidate("123") == (0, 0)
assert candidate("") == (0, 0)
assert candidate("ABC") == (3, 0)
assert candidate("abc") == (0, 3)
assert candidate("aBcD") == (2, 2)

### mask_digits | strings
Write a function that masks all but the last four characters of a card number with '#'.
def mask_digits(number: str) -> str:
    """Return number with every character except the last four replaced by '#'.
    Strings of four characters or fewer are returned unchanged.

    >>> mask_digits("4556364607935616")
    '############5616'
    >>> mask_digits("123")
    '123'
    """
    if len(number) <= 4:
        return number
    return "#" * (len(number) - 4) + number[-4:]
---
assert candidate("4556364607935616") == "############5616"
assert candidate("123") == "123"
assert candidate("") == ""
assert candidate("12345") == "#2345"
assert candidate("abcd") == "abcd"
assert candidate("Skippy") == "##ippy"

### vowel_positions | strings
Write a function that returns the positions (0-based) of all vowels in a word.
def vowel_positions(word: str) -> list:
    """Return the list of indices i such that word[i] is a vowel (a, e, i, o, u, any case).

    >>> vowel_positions("banana")
    [1, 3, 5]
    >>> vowel_positions("sky")
    []
    """
    positions = []
    for i in range(len(word)):
        if word[i].lower() in "aeiou":
            positions.append(i)
    return positions
---
assert candidate("banana") == [1, 3, 5]
assert candidate("sky") == []
assert candidate("") == []
assert candidate("Aeiou") == [0, 1, 2, 3, 4]
assert candidate("xyzA") == [3]
assert candidate("education") == [0, 2, 4, 6, 7]
'''
