"""Stdin/stdout versions of basic-python problems (LiveCodeBench's problem format).

Each spec names the function-form problem it reuses; the reference program is that problem's
full function plus `main` (the input parsing and output below). The public examples are written
by hand (so they check the glue as well as the function); the private tests are the edge inputs
plus `n_random` inputs from `gen`, with outputs computed by running the reference program.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class StdioSpec:
    entry_point: str
    title: str
    difficulty: str  # easy | medium | hard
    statement: str
    input_format: str
    output_format: str
    main: str  # body of main(): read stdin, call the function, print
    examples: list[tuple[str, str]]  # public tests: (stdin, expected stdout)
    edge_inputs: tuple[str, ...]
    gen: Callable[[random.Random], str]
    n_random: int = 8


def _word(rng: random.Random, lo: int = 1, hi: int = 12, alphabet: str = string.ascii_lowercase) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))


def _ints(rng: random.Random, n: int, lo: int, hi: int) -> list[int]:
    return [rng.randint(lo, hi) for _ in range(n)]


def _list_input(nums: list[int]) -> str:
    return f"{len(nums)}\n{' '.join(map(str, nums))}\n"


def _sentence(rng: random.Random, n_lo: int = 1, n_hi: int = 8) -> str:
    return " ".join(_word(rng, 1, 8) for _ in range(rng.randint(n_lo, n_hi)))


def _gen_palindromish(rng: random.Random) -> str:
    half = _word(rng, 1, 6, "abcAB ,")
    if rng.random() < 0.5:
        return half + half[::-1] + "\n"
    return half + _word(rng, 1, 4, "abc") + "\n"


def _gen_anagram(rng: random.Random) -> str:
    a = _word(rng, 1, 8, "abcde")
    b = list(a)
    rng.shuffle(b)
    if rng.random() < 0.4:
        b[rng.randrange(len(b))] = rng.choice("abcdef")
    return f"{a}\n{''.join(b)}\n"


def _gen_brackets(rng: random.Random) -> str:
    s = ""
    stack = []
    for _ in range(rng.randint(1, 12)):
        if stack and rng.random() < 0.5:
            s += {"(": ")", "[": "]", "{": "}"}[stack.pop()]
        else:
            ch = rng.choice("([{")
            stack.append(ch)
            s += ch
    if rng.random() < 0.5:
        s += "".join({"(": ")", "[": "]", "{": "}"}[c] for c in reversed(stack))
    return (s or "()") + "\n"


def _gen_two_sum(rng: random.Random) -> str:
    nums = _ints(rng, rng.randint(2, 10), -20, 20)
    target = rng.choice([nums[0] + nums[-1], rng.randint(-40, 40)])
    return f"{len(nums)} {target}\n{' '.join(map(str, nums))}\n"


def _gen_missing(rng: random.Random) -> str:
    n = rng.randint(1, 15)
    nums = list(range(n + 1))
    nums.remove(rng.randint(0, n))
    rng.shuffle(nums)
    return _list_input(nums)


def _gen_binary_search(rng: random.Random) -> str:
    nums = sorted(set(_ints(rng, rng.randint(1, 12), 0, 40)))
    queries = _ints(rng, rng.randint(1, 5), -1, 41)
    return f"{_list_input(nums)}{len(queries)}\n" + "".join(f"{q}\n" for q in queries)


def _gen_merge(rng: random.Random) -> str:
    a = sorted(_ints(rng, rng.randint(1, 8), -10, 10))
    b = sorted(_ints(rng, rng.randint(1, 8), -10, 10))
    return _list_input(a) + _list_input(b)


def _gen_roman(rng: random.Random) -> str:
    # A valid numeral: written by a hand-rolled converter so that it does not use the solution.
    n = rng.randint(1, 3999)
    out = ""
    for value, sym in ((1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
                       (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")):
        out += sym * (n // value)
        n %= value
    return out + "\n"


def _gen_rpn(rng: random.Random) -> str:
    # "a b op c op ...": every operator combines the value so far with a fresh 1-9 operand,
    # so a division never divides by zero.
    tokens = [str(rng.randint(1, 9))]
    for _ in range(rng.randint(1, 6)):
        tokens.append(str(rng.randint(1, 9)))
        tokens.append(rng.choice("+-*/"))
    return " ".join(tokens) + "\n"


def _gen_date(rng: random.Random) -> str:
    year = rng.choice([1900, 2000, 2023, 2024, rng.randint(1901, 2099)])
    month = rng.randint(1, 12)
    return f"{year:04d}-{month:02d}-{rng.randint(1, 28):02d}\n"


def _gen_ip(rng: random.Random) -> str:
    parts = [str(rng.randint(0, 300)) for _ in range(rng.choice([3, 4, 4, 4, 5]))]
    if rng.random() < 0.2:
        parts[0] = "0" + parts[0]
    return ".".join(parts) + "\n"


def _gen_expr(rng: random.Random) -> str:
    expr = str(rng.randint(0, 99))
    for _ in range(rng.randint(0, 5)):
        expr += rng.choice(["+", "-", " + ", " - "]) + str(rng.randint(0, 99))
    return expr + "\n"


YES_NO = "print(\"YES\" if {call} else \"NO\")"

SPECS: list[StdioSpec] = [
    StdioSpec(
        "add_three", "Three Numbers", "easy",
        "You are given three integers. Print their sum.",
        "One line with three integers a, b and c (-10^9 <= a, b, c <= 10^9), separated by spaces.",
        "Print a single integer: a + b + c.",
        "a, b, c = map(int, input().split())\nprint(add_three(a, b, c))",
        [("1 2 3\n", "6\n"), ("-5 10 0\n", "5\n")],
        ("0 0 0\n", "1000000000 1000000000 1000000000\n", "-7 -8 -9\n"),
        lambda r: " ".join(map(str, _ints(r, 3, -10**9, 10**9))) + "\n",
    ),
    StdioSpec(
        "reverse_string", "Backwards", "easy",
        "Given a string, print it reversed.",
        "One line with a string s of 1 to 100 printable characters (no leading or trailing spaces).",
        "Print s with its characters in reverse order.",
        "print(reverse_string(input()))",
        [("hello\n", "olleh\n"), ("ab c\n", "c ba\n")],
        ("x\n", "racecar\n"),
        lambda r: _word(r, 1, 30, string.ascii_letters + string.digits) + "\n",
    ),
    StdioSpec(
        "count_vowels", "Vowel Counter", "easy",
        "Count how many characters of a line are vowels (a, e, i, o, u, in upper or lower case).",
        "One line of text, 1 to 200 characters.",
        "Print the number of vowels.",
        "print(count_vowels(input()))",
        [("hello\n", "2\n"), ("AEIOU xyz\n", "5\n")],
        ("rhythm\n", "a\n"),
        lambda r: _sentence(r) + "\n",
    ),
    StdioSpec(
        "is_palindrome", "Sentence Palindrome", "easy",
        "A line is a palindrome if it reads the same forwards and backwards when only its letters "
        "and digits are kept and case is ignored. Decide whether the given line is a palindrome.",
        "One line of 1 to 200 characters.",
        "Print YES if the line is a palindrome and NO otherwise.",
        YES_NO.format(call="is_palindrome(input())"),
        [("A man, a plan, a canal: Panama\n", "YES\n"), ("hello\n", "NO\n")],
        ("x\n", "ab\n", "No 'x' in Nixon\n"),
        _gen_palindromish,
    ),
    StdioSpec(
        "count_words", "Word Count", "easy",
        "Count the words of a line. Words are separated by one or more spaces.",
        "One line of 1 to 200 characters containing at least one non-space character.",
        "Print the number of words.",
        "print(count_words(input()))",
        [("the quick  brown fox\n", "4\n"), ("  hello\n", "1\n")],
        ("a\n", "a b c d e f g\n"),
        lambda r: "  ".join(_sentence(r).split(" ")) + "\n",
    ),
    StdioSpec(
        "longest_word", "Longest Word", "easy",
        "Find the longest word of a sentence. If several words have the greatest length, choose "
        "the one that appears first.",
        "One line with 1 to 50 words made of letters, separated by single spaces.",
        "Print the longest word.",
        "print(longest_word(input()))",
        [("I love programming\n", "programming\n"), ("cat dog\n", "cat\n")],
        ("a\n", "aa bb cc\n"),
        lambda r: _sentence(r) + "\n",
    ),
    StdioSpec(
        "run_length_encode", "Run-Length Encoding", "easy",
        "Compress a string by replacing every maximal run of equal characters with the character "
        "followed by the length of the run.",
        "One line with a string of 1 to 100 lowercase letters.",
        "Print the encoded string.",
        "print(run_length_encode(input()))",
        [("aaabcc\n", "a3b1c2\n"), ("abc\n", "a1b1c1\n")],
        ("z\n", "zzzzzzzzzzzz\n"),
        lambda r: _word(r, 1, 30, "aab") + "\n",
    ),
    StdioSpec(
        "caesar_shift", "Caesar Cipher", "easy",
        "Shift every letter of a text k places forward in the alphabet, wrapping around from z to "
        "a and keeping upper and lower case. Other characters do not change.",
        "The first line holds an integer k (-1000 <= k <= 1000). The second line holds the text "
        "(1 to 200 characters).",
        "Print the shifted text.",
        "k = int(input())\nprint(caesar_shift(input(), k))",
        [("3\nabc xyz\n", "def abc\n"), ("1\nHello, World!\n", "Ifmmp, Xpsme!\n")],
        ("26\nabc\n", "-3\ndef\n", "-1000\nZz\n"),
        lambda r: f"{r.randint(-60, 60)}\n{_word(r, 1, 20, string.ascii_letters + ' ,.!1')}\n",
    ),
    StdioSpec(
        "is_anagram", "Anagrams", "easy",
        "Two words are anagrams if they contain the same letters the same number of times, "
        "ignoring case. Decide whether the two given words are anagrams.",
        "Two lines, each with a word of 1 to 50 letters.",
        "Print YES if the words are anagrams and NO otherwise.",
        YES_NO.format(call="is_anagram(input(), input())"),
        [("listen\nsilent\n", "YES\n"), ("abc\nabd\n", "NO\n")],
        ("Dormitory\ndirtyroom\n", "aab\nabb\n", "abc\nabcd\n"),
        _gen_anagram,
    ),
    StdioSpec(
        "is_balanced", "Balanced Brackets", "medium",
        "A string of brackets is balanced if every opening bracket (, [ or { is closed by the "
        "matching bracket, in the right order. Decide whether the given string is balanced.",
        "One line with 1 to 200 characters, each one of ()[]{}.",
        "Print YES if the brackets are balanced and NO otherwise.",
        YES_NO.format(call="is_balanced(input())"),
        [("([]{})\n", "YES\n"), ("([)]\n", "NO\n")],
        ("(\n", ")(\n", "}\n", "((())\n"),
        _gen_brackets,
    ),
    StdioSpec(
        "sum_of_evens", "Even Sum", "easy",
        "Given a list of integers, print the sum of its even elements.",
        "The first line holds n (1 <= n <= 1000). The second line holds n integers between "
        "-10^6 and 10^6.",
        "Print the sum of the even integers (0 if there are none).",
        "input()\nprint(sum_of_evens(list(map(int, input().split()))))",
        [("4\n1 2 3 4\n", "6\n"), ("2\n1 3\n", "0\n")],
        ("1\n-2\n", "3\n0 0 0\n"),
        lambda r: _list_input(_ints(r, r.randint(1, 20), -100, 100)),
    ),
    StdioSpec(
        "second_largest", "Runner-Up", "medium",
        "Find the second largest distinct value of a list of integers.",
        "The first line holds n (1 <= n <= 1000). The second line holds n integers.",
        "Print the second largest distinct value, or NONE if the list has fewer than two distinct "
        "values.",
        "input()\nresult = second_largest(list(map(int, input().split())))\n"
        "print(\"NONE\" if result is None else result)",
        [("5\n4 1 7 7 3\n", "4\n"), ("2\n5 5\n", "NONE\n")],
        ("1\n9\n", "2\n2 1\n", "4\n10 9 8 10\n"),
        lambda r: _list_input(_ints(r, r.randint(1, 10), -5, 5)),
    ),
    StdioSpec(
        "running_sum", "Prefix Sums", "easy",
        "Print the running sums of a list: the i-th number printed is the sum of the first i "
        "elements.",
        "The first line holds n (1 <= n <= 1000). The second line holds n integers.",
        "Print n integers separated by spaces.",
        "input()\nprint(*running_sum(list(map(int, input().split()))))",
        [("4\n1 2 3 4\n", "1 3 6 10\n"), ("3\n1 -1 1\n", "1 0 1\n")],
        ("1\n5\n",),
        lambda r: _list_input(_ints(r, r.randint(1, 15), -50, 50)),
    ),
    StdioSpec(
        "rotate_left", "Rotate the List", "easy",
        "Rotate a list to the left by k positions: the first k elements move to the end.",
        "The first line holds n and k (1 <= n <= 1000, 0 <= k <= 10^9). The second line holds n "
        "integers.",
        "Print the rotated list, separated by spaces.",
        "n, k = map(int, input().split())\nprint(*rotate_left(list(map(int, input().split())), k))",
        [("5 2\n1 2 3 4 5\n", "3 4 5 1 2\n"), ("3 4\n1 2 3\n", "2 3 1\n")],
        ("1 0\n7\n", "3 3\n1 2 3\n", "2 1000000000\n1 2\n"),
        lambda r: (lambda xs: f"{len(xs)} {r.randint(0, 30)}\n{' '.join(map(str, xs))}\n")(
            _ints(r, r.randint(1, 10), 0, 99)),
    ),
    StdioSpec(
        "merge_sorted", "Merge Two Sorted Lists", "medium",
        "Merge two lists that are sorted in non-decreasing order into one sorted list.",
        "Line 1: n (1 <= n <= 1000). Line 2: n sorted integers. Line 3: m (1 <= m <= 1000). "
        "Line 4: m sorted integers.",
        "Print the n + m merged integers, separated by spaces.",
        "input()\na = list(map(int, input().split()))\ninput()\nb = list(map(int, input().split()))\n"
        "print(*merge_sorted(a, b))",
        [("3\n1 3 5\n3\n2 4 6\n", "1 2 3 4 5 6\n"), ("1\n5\n2\n1 2\n", "1 2 5\n")],
        ("1\n1\n1\n1\n",),
        _gen_merge,
    ),
    StdioSpec(
        "binary_search", "Sorted Lookup", "medium",
        "You are given a sorted list of distinct integers and several queries. For each query, "
        "print the (0-based) position of the value in the list, or -1 if it is not there.",
        "Line 1: n (1 <= n <= 10^5). Line 2: n distinct integers in increasing order. Line 3: q "
        "(1 <= q <= 10^5). Then q lines, each with one integer.",
        "Print q lines, one answer per query.",
        "input()\nnums = list(map(int, input().split()))\nfor _ in range(int(input())):\n"
        "    print(binary_search(nums, int(input())))",
        [("5\n1 3 5 7 9\n2\n7\n4\n", "3\n-1\n"), ("1\n2\n1\n2\n", "0\n")],
        ("3\n1 2 3\n3\n0\n2\n4\n",),
        _gen_binary_search,
    ),
    StdioSpec(
        "max_subarray_sum", "Best Stretch", "hard",
        "Find the largest possible sum of a non-empty block of consecutive elements of a list.",
        "The first line holds n (1 <= n <= 10^5). The second line holds n integers between "
        "-10^4 and 10^4.",
        "Print the largest sum.",
        "input()\nprint(max_subarray_sum(list(map(int, input().split()))))",
        [("9\n-2 1 -3 4 -1 2 1 -5 4\n", "6\n"), ("3\n-3 -1 -2\n", "-1\n")],
        ("1\n5\n", "3\n2 -1 2\n"),
        lambda r: _list_input(_ints(r, r.randint(1, 20), -10, 10)),
    ),
    StdioSpec(
        "two_sum", "Pair With Target Sum", "medium",
        "Find two positions i < j of a list whose elements add up to a target. If there are "
        "several, choose the pair with the smallest j, and for that j the smallest i.",
        "The first line holds n and the target t (2 <= n <= 10^5). The second line holds n "
        "integers.",
        "Print i and j (0-based) separated by a space, or -1 if there is no such pair.",
        "n, target = map(int, input().split())\npair = two_sum(list(map(int, input().split())), target)\n"
        "print(-1 if pair is None else f\"{pair[0]} {pair[1]}\")",
        [("4 9\n2 7 11 15\n", "0 1\n"), ("3 10\n1 2 3\n", "-1\n")],
        ("2 6\n3 3\n", "4 0\n0 4 3 0\n"),
        _gen_two_sum,
    ),
    StdioSpec(
        "count_inversions", "Out of Order", "hard",
        "Count the pairs of positions i < j of a list with a[i] > a[j].",
        "The first line holds n (1 <= n <= 2000). The second line holds n integers.",
        "Print the number of such pairs.",
        "input()\nprint(count_inversions(list(map(int, input().split()))))",
        [("5\n2 4 1 3 5\n", "3\n"), ("3\n1 2 3\n", "0\n")],
        ("1\n1\n", "3\n3 2 1\n"),
        lambda r: _list_input(_ints(r, r.randint(1, 20), 0, 9)),
    ),
    StdioSpec(
        "missing_number", "The Missing Number", "easy",
        "A list holds n distinct numbers taken from 0, 1, ..., n. Find the one that is missing.",
        "The first line holds n (1 <= n <= 10^5). The second line holds the n numbers.",
        "Print the missing number.",
        "input()\nprint(missing_number(list(map(int, input().split()))))",
        [("3\n3 0 1\n", "2\n"), ("2\n0 1\n", "2\n")],
        ("1\n1\n", "1\n0\n"),
        _gen_missing,
    ),
    StdioSpec(
        "factorial", "Factorial", "easy",
        "Print n! = 1 * 2 * ... * n (0! = 1).",
        "One integer n (0 <= n <= 50).",
        "Print n!.",
        "print(factorial(int(input())))",
        [("5\n", "120\n"), ("0\n", "1\n")],
        ("1\n", "50\n"),
        lambda r: f"{r.randint(0, 30)}\n",
    ),
    StdioSpec(
        "fibonacci", "Fibonacci", "easy",
        "The Fibonacci numbers are F(0) = 0, F(1) = 1 and F(n) = F(n-1) + F(n-2). Print F(n).",
        "One integer n (0 <= n <= 90).",
        "Print F(n).",
        "print(fibonacci(int(input())))",
        [("10\n", "55\n"), ("1\n", "1\n")],
        ("0\n", "90\n"),
        lambda r: f"{r.randint(0, 90)}\n",
    ),
    StdioSpec(
        "is_prime", "Prime Queries", "easy",
        "For each of several integers, decide whether it is prime.",
        "The first line holds q (1 <= q <= 100). Each of the next q lines holds an integer n "
        "(-10^6 <= n <= 10^6).",
        "For each query print YES if n is prime and NO otherwise, one per line.",
        "for _ in range(int(input())):\n    " + YES_NO.format(call="is_prime(int(input()))"),
        [("3\n7\n1\n9\n", "YES\nNO\nNO\n"), ("1\n2\n", "YES\n")],
        ("4\n0\n-7\n97\n25\n",),
        lambda r: "5\n" + "".join(f"{x}\n" for x in _ints(r, 5, -5, 2000)),
    ),
    StdioSpec(
        "gcd", "Greatest Common Divisor", "easy",
        "Print the greatest common divisor of two non-negative integers (the gcd of 0 and 0 is 0).",
        "One line with two integers a and b (0 <= a, b <= 10^18).",
        "Print gcd(a, b).",
        "a, b = map(int, input().split())\nprint(gcd(a, b))",
        [("12 18\n", "6\n"), ("7 0\n", "7\n")],
        ("0 0\n", "0 5\n", "1000000000000000000 999999999999999999\n"),
        lambda r: f"{r.randint(0, 10**6)} {r.randint(0, 10**6)}\n",
    ),
    StdioSpec(
        "lcm", "Least Common Multiple", "easy",
        "Print the least common multiple of two positive integers.",
        "One line with two integers a and b (1 <= a, b <= 10^9).",
        "Print lcm(a, b).",
        "a, b = map(int, input().split())\nprint(lcm(a, b))",
        [("4 6\n", "12\n"), ("5 7\n", "35\n")],
        ("1 1\n", "1000000000 999999999\n"),
        lambda r: f"{r.randint(1, 1000)} {r.randint(1, 1000)}\n",
    ),
    StdioSpec(
        "collatz_steps", "Collatz Steps", "easy",
        "Start from n. While n is not 1, replace it by n / 2 if it is even and by 3n + 1 if it is "
        "odd. Count the replacements.",
        "One integer n (1 <= n <= 10^6).",
        "Print the number of steps needed to reach 1.",
        "print(collatz_steps(int(input())))",
        [("6\n", "8\n"), ("1\n", "0\n")],
        ("27\n", "1000000\n"),
        lambda r: f"{r.randint(1, 10**5)}\n",
    ),
    StdioSpec(
        "to_binary", "To Binary", "easy",
        "Write a non-negative integer in base 2.",
        "One integer n (0 <= n <= 10^18).",
        "Print the binary digits of n without leading zeros (0 is printed as 0).",
        "print(to_binary(int(input())))",
        [("10\n", "1010\n"), ("0\n", "0\n")],
        ("1\n", "1000000000000000000\n"),
        lambda r: f"{r.randint(0, 10**9)}\n",
    ),
    StdioSpec(
        "is_leap_year", "Leap Year", "easy",
        "A year is a leap year if it is divisible by 4, except years divisible by 100, which are "
        "leap years only if they are also divisible by 400. Decide whether a year is a leap year.",
        "One integer y (1 <= y <= 10^5).",
        "Print YES for a leap year and NO otherwise.",
        YES_NO.format(call="is_leap_year(int(input()))"),
        [("2024\n", "YES\n"), ("1900\n", "NO\n")],
        ("2000\n", "2100\n", "4\n"),
        lambda r: f"{r.choice([r.randint(1, 3000), 100 * r.randint(1, 30)])}\n",
    ),
    StdioSpec(
        "primes_up_to", "Primes Up To N", "medium",
        "List every prime number that is at most n.",
        "One integer n (1 <= n <= 10^5).",
        "Print the primes up to n in increasing order, separated by spaces (an empty line if "
        "there are none).",
        "print(*primes_up_to(int(input())))",
        [("20\n", "2 3 5 7 11 13 17 19\n"), ("2\n", "2\n")],
        ("1\n", "3\n", "100\n"),
        lambda r: f"{r.randint(1, 200)}\n",
    ),
    StdioSpec(
        "roman_to_int", "Roman Numerals", "medium",
        "Convert a Roman numeral to an integer. The letters are I=1, V=5, X=10, L=50, C=100, "
        "D=500, M=1000; a letter written before a larger one is subtracted (IV=4, CM=900).",
        "One line with a valid Roman numeral for a number between 1 and 3999.",
        "Print its value.",
        "print(roman_to_int(input().strip()))",
        [("XIV\n", "14\n"), ("MCMXCIV\n", "1994\n")],
        ("I\n", "MMMCMXCIX\n"),
        _gen_roman,
    ),
    StdioSpec(
        "int_to_roman", "Write It in Roman", "medium",
        "Write an integer as a Roman numeral, using the subtractive pairs IV, IX, XL, XC, CD and "
        "CM where they apply.",
        "One integer n (1 <= n <= 3999).",
        "Print the Roman numeral of n.",
        "print(int_to_roman(int(input())))",
        [("14\n", "XIV\n"), ("1994\n", "MCMXCIV\n")],
        ("1\n", "3999\n", "40\n"),
        lambda r: f"{r.randint(1, 3999)}\n",
    ),
    StdioSpec(
        "evaluate_rpn", "Reverse Polish Calculator", "hard",
        "Evaluate an expression in reverse Polish notation. Operators are +, -, * and /, where / "
        "divides integers and truncates toward zero. No division by zero happens.",
        "One line with the tokens of the expression separated by spaces (at most 1000 tokens).",
        "Print the value of the expression.",
        "print(evaluate_rpn(input().split()))",
        [("2 1 + 3 *\n", "9\n"), ("4 13 5 / +\n", "6\n")],
        ("7\n", "-7 2 /\n"),
        _gen_rpn,
    ),
    StdioSpec(
        "format_duration", "Human Duration", "easy",
        "Write a number of seconds as hours, minutes and seconds in the form \"Xh Ym Zs\", leaving "
        "out every part that is zero. Zero seconds are written \"0s\".",
        "One integer s (0 <= s <= 10^6).",
        "Print the formatted duration.",
        "print(format_duration(int(input())))",
        [("3723\n", "1h 2m 3s\n"), ("60\n", "1m\n")],
        ("0\n", "3600\n", "3601\n"),
        lambda r: f"{r.choice([r.randint(0, 100), r.randint(0, 10**5)])}\n",
    ),
    StdioSpec(
        "day_of_year", "Day of the Year", "medium",
        "Given a date, print which day of its year it is (1 January is day 1). Use the Gregorian "
        "calendar: February has 29 days in leap years.",
        "One line with a date in the form YYYY-MM-DD.",
        "Print the day number.",
        "print(day_of_year(input().strip()))",
        [("2024-03-01\n", "61\n"), ("2023-12-31\n", "365\n")],
        ("1900-03-01\n", "2000-03-01\n", "2024-12-31\n"),
        _gen_date,
    ),
    StdioSpec(
        "is_valid_ipv4", "IPv4 Check", "medium",
        "An IPv4 address is four decimal numbers from 0 to 255 separated by dots, with no leading "
        "zeros (except the number 0 itself). Decide whether a string is a valid IPv4 address.",
        "One line with a string of 1 to 30 characters without spaces.",
        "Print YES if it is a valid address and NO otherwise.",
        YES_NO.format(call="is_valid_ipv4(input().strip())"),
        [("192.168.0.1\n", "YES\n"), ("256.1.1.1\n", "NO\n")],
        ("01.2.3.4\n", "0.0.0.0\n", "1..2.3\n", "1.2.a.4\n"),
        _gen_ip,
    ),
    StdioSpec(
        "grid_paths", "Grid Walks", "medium",
        "Count the ways to walk from the top-left cell to the bottom-right cell of a grid with r "
        "rows and c columns, moving one cell right or down at a time.",
        "One line with two integers r and c (1 <= r, c <= 10).",
        "Print the number of paths.",
        "r, c = map(int, input().split())\nprint(grid_paths(r, c))",
        [("2 2\n", "2\n"), ("3 3\n", "6\n")],
        ("1 1\n", "10 10\n", "1 7\n"),
        lambda r: f"{r.randint(1, 9)} {r.randint(1, 9)}\n",
    ),
    StdioSpec(
        "hanoi_moves", "Towers of Hanoi", "medium",
        "Move a tower of n disks from peg A to peg C using peg B, one disk at a time, never "
        "putting a larger disk on a smaller one. Print the shortest solution, where the moves of "
        "the smaller tower of n-1 disks go first to peg B, then the largest disk moves, then the "
        "n-1 disks move onto it.",
        "One integer n (1 <= n <= 10).",
        "Print the number of moves, then one line per move with the source and target peg.",
        "moves = hanoi_moves(int(input()))\nprint(len(moves))\nfor a, b in moves:\n    print(a, b)",
        [("1\n", "1\nA C\n"), ("2\n", "3\nA B\nA C\nB C\n")],
        tuple(f"{n}\n" for n in range(3, 11)),
        lambda r: f"{r.randint(1, 10)}\n",
        n_random=0,
    ),
    StdioSpec(
        "permutations", "All Orderings", "medium",
        "Print every distinct ordering of the letters of a word, in alphabetical order.",
        "One line with a word of 1 to 6 lowercase letters.",
        "Print each distinct permutation on its own line, in alphabetical order.",
        "for p in permutations(input().strip()):\n    print(p)",
        [("abc\n", "abc\nacb\nbac\nbca\ncab\ncba\n"), ("aa\n", "aa\n")],
        ("x\n", "aab\n"),
        lambda r: _word(r, 1, 5, "abcd") + "\n",
    ),
    StdioSpec(
        "top_k_frequent", "Most Frequent Values", "medium",
        "Print the k values that occur most often in a list, most frequent first; values that "
        "occur equally often are ordered from smallest to largest.",
        "The first line holds n and k (1 <= k <= number of distinct values, n <= 10^5). The second "
        "line holds n integers.",
        "Print the k values separated by spaces.",
        "n, k = map(int, input().split())\nprint(*top_k_frequent(list(map(int, input().split())), k))",
        [("6 2\n1 1 1 2 2 3\n", "1 2\n"), ("5 2\n4 5 5 4 6\n", "4 5\n")],
        ("1 1\n7\n", "3 3\n3 2 1\n"),
        lambda r: (lambda xs: f"{len(xs)} {r.randint(1, len(set(xs)))}\n{' '.join(map(str, xs))}\n")(
            _ints(r, r.randint(1, 15), 0, 6)),
    ),
    StdioSpec(
        "evaluate_sum", "Plus and Minus", "easy",
        "Evaluate an expression made of non-negative integers joined by + and - signs, from left "
        "to right. Spaces may appear around the signs.",
        "One line with the expression (at most 200 characters).",
        "Print its value.",
        "print(evaluate_sum(input()))",
        [("12+3-4\n", "11\n"), (" 7 - 10 \n", "-3\n")],
        ("0\n", "100-1-1-1\n"),
        _gen_expr,
    ),
    StdioSpec(
        "climb_stairs", "Climbing Stairs", "easy",
        "You climb a staircase of n steps, taking 1 or 2 steps at a time. In how many different "
        "ways can you reach the top?",
        "One integer n (0 <= n <= 80).",
        "Print the number of ways.",
        "print(climb_stairs(int(input())))",
        [("3\n", "3\n"), ("5\n", "8\n")],
        ("0\n", "1\n", "80\n"),
        lambda r: f"{r.randint(0, 80)}\n",
    ),
]
