"""basic-python problems, part 5: sorting and parsing. Block format: see `problems_strings`."""

SOURCE = r'''
### bubble_sort | sorting
Write a function that sorts a list of numbers with bubble sort and returns a new sorted list.
def bubble_sort(nums: list) -> list:
    """Return a new list with the numbers of nums in ascending order, using bubble sort.

    >>> bubble_sort([5, 1, 4, 2, 8])
    [1, 2, 4, 5, 8]
    >>> bubble_sort([])
    []
    """
    result = list(nums)
    n = len(result)
    for i in range(n):
        for j in range(n - 1 - i):
            if result[j] > result[j + 1]:
                result[j], result[j + 1] = result[j + 1], result[j]
    return result
---
assert candidate([5, 1, 4, 2, 8]) == [1, 2, 4, 5, 8]
assert candidate([]) == []
assert candidate([1]) == [1]
assert candidate([3, 2, 1]) == [1, 2, 3]
assert candidate([2, 2, 1, 1]) == [1, 1, 2, 2]
assert candidate([-1, 5, 0, -7]) == [-7, -1, 0, 5]

### insertion_sort | sorting
Write a function that sorts a list of numbers with insertion sort and returns a new sorted list.
def insertion_sort(nums: list) -> list:
    """Return a new list with the numbers of nums in ascending order, using insertion sort.

    >>> insertion_sort([4, 3, 2, 10, 12, 1])
    [1, 2, 3, 4, 10, 12]
    >>> insertion_sort([1])
    [1]
    """
    result = list(nums)
    for i in range(1, len(result)):
        key = result[i]
        j = i - 1
        while j >= 0 and result[j] > key:
            result[j + 1] = result[j]
            j -= 1
        result[j + 1] = key
    return result
---
assert candidate([4, 3, 2, 10, 12, 1]) == [1, 2, 3, 4, 10, 12]
assert candidate([1]) == [1]
assert candidate([]) == []
assert candidate([2, 1]) == [1, 2]
assert candidate([5, 5, 4]) == [4, 5, 5]
assert candidate([9, -2, 7, 0]) == [-2, 0, 7, 9]

### sort_by_length | sorting
Write a function that sorts words by length without sort() or sorted(), keeping the original order of words with the same length.
def sort_by_length(words: list) -> list:
    """Return the words ordered by increasing length; words of equal length keep their order.
    Do not use sort() or sorted().

    >>> sort_by_length(["banana", "kiwi", "fig", "apple"])
    ['fig', 'kiwi', 'apple', 'banana']
    >>> sort_by_length(["bb", "aa", "c"])
    ['c', 'bb', 'aa']
    """
    result = []
    for word in words:
        i = len(result)
        while i > 0 and len(result[i - 1]) > len(word):
            i -= 1
        result.insert(i, word)
    return result
---
assert candidate(["banana", "kiwi", "fig", "apple"]) == ["fig", "kiwi", "apple", "banana"]
assert candidate(["bb", "aa", "c"]) == ["c", "bb", "aa"]
assert candidate([]) == []
assert candidate(["one"]) == ["one"]
assert candidate(["ccc", "bb", "a"]) == ["a", "bb", "ccc"]

### sort_by_second | sorting
Write a function that sorts a list of pairs by their second element, then by the first.
def sort_by_second(pairs: list) -> list:
    """Return the pairs sorted by their second element, and by the first one on a tie.

    >>> sort_by_second([(1, 3), (2, 1), (0, 3)])
    [(2, 1), (0, 3), (1, 3)]
    >>> sort_by_second([])
    []
    """
    return sorted(pairs, key=lambda p: (p[1], p[0]))
---
assert candidate([(1, 3), (2, 1), (0, 3)]) == [(2, 1), (0, 3), (1, 3)]
assert candidate([]) == []
assert candidate([(5, 5)]) == [(5, 5)]
assert candidate([("b", 2), ("a", 2), ("c", 1)]) == [("c", 1), ("a", 2), ("b", 2)]
assert candidate([(3, -1), (1, 0)]) == [(3, -1), (1, 0)]

### merge_sort | sorting
Write a recursive merge sort that returns a new sorted list.
def merge_sort(nums: list) -> list:
    """Return a new ascending list with the elements of nums, using merge sort.

    >>> merge_sort([38, 27, 43, 3, 9, 82, 10])
    [3, 9, 10, 27, 38, 43, 82]
    >>> merge_sort([])
    []
    """
    if len(nums) <= 1:
        return list(nums)
    mid = len(nums) // 2
    left = merge_sort(nums[:mid])
    right = merge_sort(nums[mid:])
    merged = []
    i = j = 0
    while i < len(left) and j < len(right):
        if left[i] <= right[j]:
            merged.append(left[i])
            i += 1
        else:
            merged.append(right[j])
            j += 1
    return merged + left[i:] + right[j:]
---
assert candidate([38, 27, 43, 3, 9, 82, 10]) == [3, 9, 10, 27, 38, 43, 82]
assert candidate([]) == []
assert candidate([1]) == [1]
assert candidate([2, 1]) == [1, 2]
assert candidate([3, 3, 1, 1]) == [1, 1, 3, 3]
assert candidate(list(range(20, 0, -1))) == list(range(1, 21))

### kth_smallest | sorting
Write a function that returns the k-th smallest element of a list (k starts at 1).
def kth_smallest(nums: list, k: int):
    """Return the k-th smallest element of nums (1 <= k <= len(nums)); duplicates count
    separately.

    >>> kth_smallest([7, 10, 4, 3, 20, 15], 3)
    7
    >>> kth_smallest([1, 1, 2], 2)
    1
    """
    ordered = sorted(nums)
    return ordered[k - 1]
---
assert candidate([7, 10, 4, 3, 20, 15], 3) == 7
assert candidate([1, 1, 2], 2) == 1
assert candidate([5], 1) == 5
assert candidate([3, 1, 2], 3) == 3
assert candidate([3, 1, 2], 1) == 1
assert candidate([9, 8, 7, 6], 2) == 7

### is_sorted | sorting
Write a function that checks whether a list is sorted in non-decreasing order.
def is_sorted(nums: list) -> bool:
    """Return True if every element of nums is less than or equal to the next one.

    >>> is_sorted([1, 2, 2, 5])
    True
    >>> is_sorted([3, 1])
    False
    """
    for i in range(len(nums) - 1):
        if nums[i] > nums[i + 1]:
            return False
    return True
---
assert candidate([1, 2, 2, 5]) is True
assert candidate([3, 1]) is False
assert candidate([]) is True
assert candidate([4]) is True
assert candidate([1, 2, 3, 0]) is False
assert candidate([1, 3, 2, 4]) is False

### sort_by_frequency | sorting
Write a function that sorts numbers by how often they occur, most frequent first, ties broken by value.
def sort_by_frequency(nums: list) -> list:
    """Return nums ordered by decreasing count of each value; values with the same count are
    in increasing order, and equal values stay together.

    >>> sort_by_frequency([4, 6, 2, 6, 4, 4])
    [4, 4, 4, 6, 6, 2]
    >>> sort_by_frequency([3, 1, 2])
    [1, 2, 3]
    """
    counts = {}
    for n in nums:
        counts[n] = counts.get(n, 0) + 1
    return sorted(nums, key=lambda n: (-counts[n], n))
---
assert candidate([4, 6, 2, 6, 4, 4]) == [4, 4, 4, 6, 6, 2]
assert candidate([3, 1, 2]) == [1, 2, 3]
assert candidate([]) == []
assert candidate([5, 5, 7, 7, 1]) == [5, 5, 7, 7, 1]
assert candidate([2, 3, 3, 2, 3]) == [3, 3, 3, 2, 2]

### parse_csv_line | parsing
Write a function that splits one line of comma-separated values into fields with surrounding spaces removed.
def parse_csv_line(line: str) -> list:
    """Split line at commas and strip spaces around each field (no quoting). An empty line
    has no fields.

    >>> parse_csv_line("a, b ,c")
    ['a', 'b', 'c']
    >>> parse_csv_line("x,,y")
    ['x', '', 'y']
    """
    if line.strip() == "":
        return []
    fields = []
    for part in line.split(","):
        fields.append(part.strip())
    return fields
---
assert candidate("a, b ,c") == ["a", "b", "c"]
assert candidate("x,,y") == ["x", "", "y"]
assert candidate("") == []
assert candidate("single") == ["single"]
assert candidate(" 1 , 2 ") == ["1", "2"]
assert candidate("a,") == ["a", ""]

### parse_key_values | parsing
Write a function that parses a string like "a=1;b=2" into a dictionary of integers.
def parse_key_values(text: str) -> dict:
    """Parse "key=value" pairs separated by ';' into a dict with integer values. Spaces around
    keys and values are ignored, and empty pairs are skipped.

    >>> parse_key_values("a=1;b=2")
    {'a': 1, 'b': 2}
    >>> parse_key_values(" x = 10 ; ")
    {'x': 10}
    """
    result = {}
    for pair in text.split(";"):
        if not pair.strip():
            continue
        key, value = pair.split("=")
        result[key.strip()] = int(value)
    return result
---
assert candidate("a=1;b=2") == {"a": 1, "b": 2}
assert candidate(" x = 10 ; ") == {"x": 10}
assert candidate("") == {}
assert candidate("n=-5") == {"n": -5}
assert candidate("a=1;a=2") == {"a": 2}
assert candidate(";;k=3;;") == {"k": 3}

### evaluate_rpn | parsing
Write a function that evaluates an arithmetic expression in reverse Polish notation.
def evaluate_rpn(tokens: list) -> int:
    """Evaluate the reverse Polish expression given as tokens (integers and the operators
    +, -, *, and / meaning integer division truncated toward zero).

    >>> evaluate_rpn(["2", "1", "+", "3", "*"])
    9
    >>> evaluate_rpn(["4", "13", "5", "/", "+"])
    6
    """
    stack = []
    for token in tokens:
        if token in ("+", "-", "*", "/"):
            b = stack.pop()
            a = stack.pop()
            if token == "+":
                stack.append(a + b)
            elif token == "-":
                stack.append(a - b)
            elif token == "*":
                stack.append(a * b)
            else:
                stack.append(int(a / b))
        else:
            stack.append(int(token))
    return stack[0]
---
assert candidate(["2", "1", "+", "3", "*"]) == 9
assert candidate(["4", "13", "5", "/", "+"]) == 6
assert candidate(["7"]) == 7
assert candidate(["5", "8", "-"]) == -3
assert candidate(["-7", "2", "/"]) == -3
assert candidate(["10", "6", "9", "3", "+", "-11", "*", "/", "*", "17", "+", "5", "+"]) == 22

### parse_time | parsing
Write a function that converts a time written as "HH:MM" into minutes after midnight.
def parse_time(text: str) -> int:
    """Return the number of minutes after midnight of the 24-hour time "HH:MM".

    >>> parse_time("01:30")
    90
    >>> parse_time("23:59")
    1439
    """
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)
---
assert candidate("01:30") == 90
assert candidate("23:59") == 1439
assert candidate("00:00") == 0
assert candidate("12:00") == 720
assert candidate("00:07") == 7

### format_duration | parsing
Write a function that formats a number of seconds as hours, minutes and seconds like "1h 2m 3s", leaving out zero parts.
def format_duration(seconds: int) -> str:
    """Format seconds >= 0 as "Xh Ym Zs", leaving out the parts that are zero; 0 seconds is
    "0s".

    >>> format_duration(3723)
    '1h 2m 3s'
    >>> format_duration(60)
    '1m'
    """
    if seconds == 0:
        return "0s"
    hours = seconds // 3600
    minutes = seconds % 3600 // 60
    secs = seconds % 60
    parts = []
    if hours > 0:
        parts.append(f"{hours}h")
    if minutes > 0:
        parts.append(f"{minutes}m")
    if secs > 0:
        parts.append(f"{secs}s")
    return " ".join(parts)
---
assert candidate(3723) == "1h 2m 3s"
assert candidate(60) == "1m"
assert candidate(0) == "0s"
assert candidate(59) == "59s"
assert candidate(3600) == "1h"
assert candidate(3601) == "1h 1s"
assert candidate(86399) == "23h 59m 59s"

### roman_to_int | parsing
Write a function that converts a Roman numeral to an integer.
def roman_to_int(numeral: str) -> int:
    """Return the value of the Roman numeral (I, V, X, L, C, D, M, with subtractive pairs
    such as IV and CM).

    >>> roman_to_int("XIV")
    14
    >>> roman_to_int("MCMXCIV")
    1994
    """
    values = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100, "D": 500, "M": 1000}
    total = 0
    for i in range(len(numeral)):
        value = values[numeral[i]]
        if i + 1 < len(numeral) and value < values[numeral[i + 1]]:
            total -= value
        else:
            total += value
    return total
---
assert candidate("XIV") == 14
assert candidate("MCMXCIV") == 1994
assert candidate("I") == 1
assert candidate("IV") == 4
assert candidate("IX") == 9
assert candidate("LVIII") == 58
assert candidate("MMXXV") == 2025

### int_to_roman | parsing
Write a function that converts an integer between 1 and 3999 to a Roman numeral.
def int_to_roman(n: int) -> str:
    """Return the Roman numeral of 1 <= n <= 3999, using subtractive pairs (IV, IX, XL, ...).

    >>> int_to_roman(14)
    'XIV'
    >>> int_to_roman(1994)
    'MCMXCIV'
    """
    table = [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
             (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]
    result = ""
    for value, symbol in table:
        while n >= value:
            result += symbol
            n -= value
    return result
---
assert candidate(14) == "XIV"
assert candidate(1994) == "MCMXCIV"
assert candidate(1) == "I"
assert candidate(4) == "IV"
assert candidate(3999) == "MMMCMXCIX"
assert candidate(40) == "XL"
assert candidate(58) == "LVIII"

### extract_numbers | parsing
Write a function that extracts all integers (possibly negative) that appear in a piece of text.
def extract_numbers(text: str) -> list:
    """Return the integers written in text, in order. A '-' directly before digits makes the
    number negative; any other character separates numbers.

    >>> extract_numbers("a1b22c-3")
    [1, 22, -3]
    >>> extract_numbers("no digits")
    []
    """
    numbers = []
    current = ""
    for ch in text + " ":
        if ch.isdigit():
            current += ch
        elif ch == "-" and current == "":
            current = "-"
        else:
            if current not in ("", "-"):
                numbers.append(int(current))
            current = "-" if ch == "-" else ""
    return numbers
---
assert candidate("a1b22c-3") == [1, 22, -3]
assert candidate("no digits") == []
assert candidate("") == []
assert candidate("42") == [42]
assert candidate("x - 5") == [5]
assert candidate("10-20") == [10, -20]
assert candidate("--7") == [-7]

### evaluate_sum | parsing
Write a function that evaluates an expression made of integers joined by + and - signs, such as "12+3-4".
def evaluate_sum(expression: str) -> int:
    """Evaluate a string of non-negative integers separated by '+' or '-' (spaces allowed),
    from left to right.

    >>> evaluate_sum("12+3-4")
    11
    >>> evaluate_sum(" 7 - 10 ")
    -3
    """
    total = 0
    number = 0
    sign = 1
    for ch in expression:
        if ch.isdigit():
            number = number * 10 + int(ch)
        elif ch in "+-":
            total += sign * number
            number = 0
            sign = 1 if ch == "+" else -1
    return total + sign * number
---
assert candidate("12+3-4") == 11
assert candidate(" 7 - 10 ") == -3
assert candidate("5") == 5
assert candidate("0") == 0
assert candidate("1+2+3+4") == 10
assert candidate("100-1-1-1") == 97

### day_of_year | parsing
Write a function that returns the day of the year (1-366) for a date written as "YYYY-MM-DD".
def day_of_year(date: str) -> int:
    """Return the 1-based day number within its year of the ISO date "YYYY-MM-DD"
    (Gregorian calendar, leap years included).

    >>> day_of_year("2024-03-01")
    61
    >>> day_of_year("2023-12-31")
    365
    """
    year, month, day = (int(part) for part in date.split("-"))
    lengths = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    if year % 4 == 0 and (year % 100 != 0 or year % 400 == 0):
        lengths[1] = 29
    return sum(lengths[:month - 1]) + day
---
assert candidate("2024-03-01") == 61
assert candidate("2023-12-31") == 365
assert candidate("2024-12-31") == 366
assert candidate("2023-01-01") == 1
assert candidate("1900-03-01") == 60
assert candidate("2000-03-01") == 61

### is_valid_ipv4 | parsing
Write a function that checks whether a string is a valid IPv4 address in dotted decimal form.
def is_valid_ipv4(address: str) -> bool:
    """Return True if address is four decimal numbers 0-255 separated by dots, without
    leading zeros (except "0" itself) and without other characters.

    >>> is_valid_ipv4("192.168.0.1")
    True
    >>> is_valid_ipv4("256.1.1.1")
    False
    >>> is_valid_ipv4("01.2.3.4")
    False
    """
    parts = address.split(".")
    if len(parts) != 4:
        return False
    for part in parts:
        if not part.isdigit() or not part.isascii():
            return False
        if len(part) > 1 and part[0] == "0":
            return False
        if int(part) > 255:
            return False
    return True
---
assert candidate("192.168.0.1") is True
assert candidate("256.1.1.1") is False
assert candidate("01.2.3.4") is False
assert candidate("0.0.0.0") is True
assert candidate("255.255.255.255") is True
assert candidate("1.2.3") is False
assert candidate("1.2.3.4.5") is False
assert candidate("1.2.a.4") is False
assert candidate("1..2.3") is False

### count_word_lines | parsing
Write a function that counts the lines of a text that contain a given word as a whole word.
def count_word_lines(text: str, word: str) -> int:
    r"""Return how many lines of text contain word as one of their whitespace-separated words
    (exact, case-sensitive match).

    >>> count_word_lines("a cat\nthe dog\ncat and cat", "cat")
    2
    >>> count_word_lines("concatenate", "cat")
    0
    """
    count = 0
    for line in text.split("\n"):
        if word in line.split():
            count += 1
    return count
---
assert candidate("a cat\nthe dog\ncat and cat", "cat") == 2
assert candidate("concatenate", "cat") == 0
assert candidate("", "x") == 0
assert candidate("x\nx\nx", "x") == 3
assert candidate("Cat\ncat", "cat") == 1
'''
