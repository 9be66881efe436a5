"""basic-python problems, part 3: numbers. Block format: see `problems_strings`."""

SOURCE = r'''
### factorial | math
Write a function that computes n factorial with a loop.
def factorial(n: int) -> int:
    """Return n! = 1 * 2 * ... * n for n >= 0 (0! is 1).

    >>> factorial(5)
    120
    >>> factorial(0)
    1
    """
    result = 1
    for i in range(2, n + 1):
        result *= i
    return result
---
assert candidate(5) == 120
assert candidate(0) == 1
assert candidate(1) == 1
assert candidate(3) == 6
assert candidate(10) == 3628800

### fibonacci | math
Write a function that returns the n-th Fibonacci number, where fibonacci(0) is 0 and fibonacci(1) is 1.
def fibonacci(n: int) -> int:
    """Return the n-th Fibonacci number: F(0) = 0, F(1) = 1, F(n) = F(n-1) + F(n-2).

    >>> fibonacci(10)
    55
    >>> fibonacci(1)
    1
    """
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
---
assert candidate(0) == 0
assert candidate(1) == 1
assert candidate(2) == 1
assert candidate(10) == 55
assert candidate(20) == 6765
assert candidate(7) == 13

### is_prime | math
Write a function that checks whether a number is prime.
def is_prime(n: int) -> bool:
    """Return True if n is a prime number (n may be any integer).

    >>> is_prime(7)
    True
    >>> is_prime(1)
    False
    """
    if n < 2:
        return False
    i = 2
    while i * i <= n:
        if n % i == 0:
            return False
        i += 1
    return True
---
assert candidate(7) is True
assert candidate(1) is False
assert candidate(2) is True
assert candidate(9) is False
assert candidate(25) is False
assert candidate(97) is True
assert candidate(0) is False
assert candidate(-7) is False

### gcd | math
Write a function that computes the greatest common divisor of two non-negative integers with Euclid's algorithm.
def gcd(a: int, b: int) -> int:
    """Return the greatest common divisor of the non-negative integers a and b
    (gcd(0, 0) is 0).

    >>> gcd(12, 18)
    6
    >>> gcd(7, 0)
    7
    """
    while b != 0:
        a, b = b, a % b
    return a
---
assert candidate(12, 18) == 6
assert candidate(7, 0) == 7
assert candidate(0, 5) == 5
assert candidate(0, 0) == 0
assert candidate(17, 13) == 1
assert candidate(100, 75) == 25

### lcm | math
Write a function that computes the least common multiple of two positive integers.
def lcm(a: int, b: int) -> int:
    """Return the least common multiple of the positive integers a and b.

    >>> lcm(4, 6)
    12
    >>> lcm(5, 7)
    35
    """
    x, y = a, b
    while y:
        x, y = y, x % y
    return a * b // x
---
assert candidate(4, 6) == 12
assert candidate(5, 7) == 35
assert candidate(1, 9) == 9
assert candidate(8, 8) == 8
assert candidate(21, 6) == 42
assert candidate(12, 18) == 36

### digit_sum | math
Write a function that returns the sum of the decimal digits of an integer (the sign is ignored).
def digit_sum(n: int) -> int:
    """Return the sum of the decimal digits of n; for negative n the sign is ignored.

    >>> digit_sum(1234)
    10
    >>> digit_sum(-56)
    11
    """
    n = abs(n)
    total = 0
    while n > 0:
        total += n % 10
        n //= 10
    return total
---
assert candidate(1234) == 10
assert candidate(-56) == 11
assert candidate(0) == 0
assert candidate(9) == 9
assert candidate(1000) == 1
assert candidate(99999) == 45

### reverse_number | math
Write a function that reverses the digits of a non-negative integer.
def reverse_number(n: int) -> int:
    """Return the number whose decimal digits are those of n (n >= 0) in reverse order.
    Leading zeros of the result disappear.

    >>> reverse_number(1234)
    4321
    >>> reverse_number(120)
    21
    """
    result = 0
    while n > 0:
        result = result * 10 + n % 10
        n //= 10
    return result
---
assert candidate(1234) == 4321
assert candidate(120) == 21
assert candidate(0) == 0
assert candidate(7) == 7
assert candidate(1001) == 1001
assert candidate(908) == 809

### is_perfect_square | math
Write a function that checks whether an integer is a perfect square, using integers only.
def is_perfect_square(n: int) -> bool:
    """Return True if n == k * k for some integer k (negative n never is).

    >>> is_perfect_square(16)
    True
    >>> is_perfect_square(15)
    False
    """
    if n < 0:
        return False
    k = 0
    while k * k < n:
        k += 1
    return k * k == n
---
assert candidate(16) is True
assert candidate(15) is False
assert candidate(0) is True
assert candidate(1) is True
assert candidate(-4) is False
assert candidate(144) is True
assert candidate(2) is False

### count_divisors | math
Write a function that counts the positive divisors of a positive integer.
def count_divisors(n: int) -> int:
    """Return how many positive integers divide the positive integer n.

    >>> count_divisors(12)
    6
    >>> count_divisors(1)
    1
    """
    count = 0
    for d in range(1, n + 1):
        if n % d == 0:
            count += 1
    return count
---
assert candidate(12) == 6
assert candidate(1) == 1
assert candidate(7) == 2
assert candidate(36) == 9
assert candidate(100) == 9
assert candidate(2) == 2

### primes_up_to | math
Write a function that lists all primes up to n with the sieve of Eratosthenes.
def primes_up_to(n: int) -> list:
    """Return all primes p with 2 <= p <= n, in increasing order, using a sieve.

    >>> primes_up_to(20)
    [2, 3, 5, 7, 11, 13, 17, 19]
    >>> primes_up_to(1)
    []
    """
    if n < 2:
        return []
    is_prime = [True] * (n + 1)
    is_prime[0] = False
    is_prime[1] = False
    for i in range(2, n + 1):
        if is_prime[i]:
            for j in range(i * i, n + 1, i):
                is_prime[j] = False
    return [i for i in range(n + 1) if is_prime[i]]
---
assert candidate(20) == [2, 3, 5, 7, 11, 13, 17, 19]
assert candidate(1) == []
assert candidate(2) == [2]
assert candidate(3) == [2, 3]
assert candidate(10) == [2, 3, 5, 7]
assert len(candidate(100)) == 25

### power | math
Write a recursive function that computes base to the power exp by repeated squaring.
def power(base: int, exp: int) -> int:
    """Return base ** exp for exp >= 0, computed recursively by squaring (without ** or pow).

    >>> power(2, 10)
    1024
    >>> power(5, 0)
    1
    """
    if exp == 0:
        return 1
    half = power(base, exp // 2)
    if exp % 2 == 0:
        return half * half
    return half * half * base
---
assert candidate(2, 10) == 1024
assert candidate(5, 0) == 1
assert candidate(3, 1) == 3
assert candidate(3, 5) == 243
assert candidate(-2, 3) == -8
assert candidate(7, 2) == 49
assert candidate(1, 100) == 1

### is_armstrong | math
Write a function that checks whether a number equals the sum of its digits each raised to the number of digits.
def is_armstrong(n: int) -> bool:
    """Return True if the non-negative n equals the sum of its digits, each raised to the
    power of the number of digits (e.g. 153 = 1**3 + 5**3 + 3**3).

    >>> is_armstrong(153)
    True
    >>> is_armstrong(154)
    False
    """
    digits = str(n)
    k = len(digits)
    total = 0
    for d in digits:
        total += int(d) ** k
    return total == n
---
assert candidate(153) is True
assert candidate(154) is False
assert candidate(0) is True
assert candidate(9) is True
assert candidate(10) is False
assert candidate(9474) is True
assert candidate(370) is True

### collatz_steps | math
Write a function that counts the steps the Collatz process takes to reach 1.
def collatz_steps(n: int) -> int:
    """Starting from n >= 1, repeatedly replace n by n // 2 if it is even and by 3 * n + 1 if
    it is odd; return the number of steps until n is 1.

    >>> collatz_steps(6)
    8
    >>> collatz_steps(1)
    0
    """
    steps = 0
    while n != 1:
        if n % 2 == 0:
            n = n // 2
        else:
            n = 3 * n + 1
        steps += 1
    return steps
---
assert candidate(6) == 8
assert candidate(1) == 0
assert candidate(2) == 1
assert candidate(3) == 7
assert candidate(27) == 111
assert candidate(16) == 4

### sum_of_squares | math
Write a function that returns the sum of the squares of the integers from 1 to n.
def sum_of_squares(n: int) -> int:
    """Return 1*1 + 2*2 + ... + n*n for n >= 0.

    >>> sum_of_squares(3)
    14
    >>> sum_of_squares(0)
    0
    """
    total = 0
    for i in range(1, n + 1):
        total += i * i
    return total
---
assert candidate(3) == 14
assert candidate(0) == 0
assert candidate(1) == 1
assert candidate(10) == 385
assert candidate(2) == 5

### celsius_to_fahrenheit | math
Write a function that converts a temperature from Celsius to Fahrenheit.
def celsius_to_fahrenheit(celsius: float) -> float:
    """Return the temperature celsius expressed in degrees Fahrenheit (F = C * 9 / 5 + 32).

    >>> celsius_to_fahrenheit(100)
    212.0
    >>> celsius_to_fahrenheit(-40)
    -40.0
    """
    return celsius * 9 / 5 + 32
---
assert candidate(100) == 212.0
assert candidate(-40) == -40.0
assert candidate(0) == 32.0
assert abs(candidate(37) - 98.6) < 1e-9
assert abs(candidate(25.5) - 77.9) < 1e-9

### triangle_type | math
Write a function that classifies a triangle by its side lengths as equilateral, isosceles, scalene or invalid.
def triangle_type(a: int, b: int, c: int) -> str:
    """Return "invalid" if a, b, c cannot be the sides of a triangle (a side is not positive,
    or one side is at least the sum of the other two); otherwise "equilateral", "isosceles"
    or "scalene".

    >>> triangle_type(3, 3, 3)
    'equilateral'
    >>> triangle_type(3, 4, 5)
    'scalene'
    >>> triangle_type(1, 2, 3)
    'invalid'
    """
    if a <= 0 or b <= 0 or c <= 0:
        return "invalid"
    if a + b <= c or a + c <= b or b + c <= a:
        return "invalid"
    if a == b and b == c:
        return "equilateral"
    if a == b or b == c or a == c:
        return "isosceles"
    return "scalene"
---
assert candidate(3, 3, 3) == "equilateral"
assert candidate(3, 4, 5) == "scalene"
assert candidate(1, 2, 3) == "invalid"
assert candidate(5, 5, 8) == "isosceles"
assert candidate(8, 5, 5) == "isosceles"
assert candidate(5, 8, 5) == "isosceles"
assert candidate(0, 1, 1) == "invalid"
assert candidate(2, 3, 10) == "invalid"

### to_binary | math
Write a function that converts a non-negative integer to its binary representation as a string, without bin().
def to_binary(n: int) -> str:
    """Return the binary digits of n >= 0 as a string, without the '0b' prefix and without
    using bin() or format().

    >>> to_binary(10)
    '1010'
    >>> to_binary(0)
    '0'
    """
    if n == 0:
        return "0"
    digits = ""
    while n > 0:
        digits = str(n % 2) + digits
        n //= 2
    return digits
---
assert candidate(10) == "1010"
assert candidate(0) == "0"
assert candidate(1) == "1"
assert candidate(2) == "10"
assert candidate(255) == "11111111"
assert candidate(37) == "100101"

### from_binary | math
Write a function that converts a string of binary digits to an integer, without int(s, 2).
def from_binary(bits: str) -> int:
    """Return the integer whose binary digits are bits (a non-empty string of 0s and 1s),
    without calling int(bits, 2).

    >>> from_binary("1010")
    10
    >>> from_binary("0")
    0
    """
    value = 0
    for bit in bits:
        value = value * 2 + (1 if bit == "1" else 0)
    return value
---
assert candidate("1010") == 10
assert candidate("0") == 0
assert candidate("1") == 1
assert candidate("11111111") == 255
assert candidate("100101") == 37
assert candidate("0001") == 1

### is_leap_year | math
Write a function that tells whether a year is a leap year in the Gregorian calendar.
def is_leap_year(year: int) -> bool:
    """Return True if year is a Gregorian leap year: divisible by 4, except centuries, which
    must be divisible by 400.

    >>> is_leap_year(2024)
    True
    >>> is_leap_year(1900)
    False
    """
    if year % 400 == 0:
        return True
    if year % 100 == 0:
        return False
    return year % 4 == 0
---
assert candidate(2024) is True
assert candidate(1900) is False
assert candidate(2000) is True
assert candidate(2023) is False
assert candidate(1600) is True
assert candidate(2100) is False
assert candidate(4) is True

### triangular_number | math
Write a function that returns the n-th triangular number, the sum 1 + 2 + ... + n.
def triangular_number(n: int) -> int:
    """Return 1 + 2 + ... + n for n >= 0, using a loop.

    >>> triangular_number(4)
    10
    >>> triangular_number(0)
    0
    """
    total = 0
    for i in range(n + 1):
        total += i
    return total
---
assert candidate(4) == 10
assert candidate(0) == 0
assert candidate(1) == 1
assert candidate(100) == 5050
assert candidate(7) == 28

### round_to_multiple | math
Write a function that rounds a non-negative integer to the nearest multiple of m, rounding halves up.
def round_to_multiple(n: int, m: int) -> int:
    """Round the non-negative n to the nearest multiple of the positive m; exact halves go up.

    >>> round_to_multiple(17, 5)
    15
    >>> round_to_multiple(18, 5)
    20
    >>> round_to_multiple(15, 10)
    20
    """
    remainder = n % m
    if remainder * 2 >= m:
        return n - remainder + m
    return n - remainder
---
assert candidate(17, 5) == 15
assert candidate(18, 5) == 20
assert candidate(15, 10) == 20
assert candidate(0, 3) == 0
assert candidate(20, 5) == 20
assert candidate(14, 10) == 10
assert candidate(7, 1) == 7

### clamp | math
Write a function that clamps a number into the range [low, high].
def clamp(x: int, low: int, high: int) -> int:
    """Return low if x < low, high if x > high, and x otherwise (low <= high).

    >>> clamp(5, 0, 10)
    5
    >>> clamp(-3, 0, 10)
    0
    >>> clamp(42, 0, 10)
    10
    """
    if x < low:
        return low
    if x > high:
        return high
    return x
---
assert candidate(5, 0, 10) == 5
assert candidate(-3, 0, 10) == 0
assert candidate(42, 0, 10) == 10
assert candidate(0, 0, 10) == 0
assert candidate(10, 0, 10) == 10
assert candidate(7, 7, 7) == 7

### digital_root | math
Write a recursive function that repeatedly sums the digits of a number until a single digit remains.
def digital_root(n: int) -> int:
    """Return the digital root of n >= 0: sum its digits, then the digits of the sum, and so
    on, until one digit is left. Use recursion.

    >>> digital_root(942)
    6
    >>> digital_root(7)
    7
    """
    if n < 10:
        return n
    total = 0
    while n > 0:
        total += n % 10
        n //= 10
    return digital_root(total)
---
assert candidate(942) == 6
assert candidate(7) == 7
assert candidate(0) == 0
assert candidate(10) == 1
assert candidate(99999) == 9
assert candidate(132189) == 6

### count_digits | math
Write a function that counts the decimal digits of an integer without converting it to a string.
def count_digits(n: int) -> int:
    """Return how many decimal digits n has (the sign does not count; 0 has one digit),
    without converting n to a string.

    >>> count_digits(12345)
    5
    >>> count_digits(-7)
    1
    """
    n = abs(n)
    count = 1
    while n >= 10:
        n //= 10
        count += 1
    return count
---
assert candidate(12345) == 5
assert candidate(-7) == 1
assert candidate(0) == 1
assert candidate(10) == 2
assert candidate(9) == 1
assert candidate(1000000) == 7

### sum_multiples | math
Write a function that sums all natural numbers below n that are multiples of 3 or 5.
def sum_multiples(n: int) -> int:
    """Return the sum of the numbers 0 <= k < n that are divisible by 3 or by 5.

    >>> sum_multiples(10)
    23
    >>> sum_multiples(1)
    0
    """
    total = 0
    for k in range(n):
        if k % 3 == 0 or k % 5 == 0:
            total += k
    return total
---
assert candidate(10) == 23
assert candidate(1) == 0
assert candidate(0) == 0
assert candidate(4) == 3
assert candidate(16) == 60
assert candidate(1000) == 233168

### perfect_number | math
Write a function that checks whether a positive integer is perfect, i.e. equal to the sum of its proper divisors.
def perfect_number(n: int) -> bool:
    """Return True if the positive integer n equals the sum of its divisors smaller than n.

    >>> perfect_number(28)
    True
    >>> perfect_number(12)
    False
    """
    total = 0
    for d in range(1, n):
        if n % d == 0:
            total += d
    return total == n
---
assert candidate(28) is True
assert candidate(12) is False
assert candidate(6) is True
assert candidate(1) is False
assert candidate(496) is True
assert candidate(8) is False

### integer_sqrt | math
Write a function that returns the integer square root of a non-negative number using binary search.
def integer_sqrt(n: int) -> int:
    """Return the largest integer r with r * r <= n (n >= 0), found by binary search.

    >>> integer_sqrt(17)
    4
    >>> integer_sqrt(16)
    4
    """
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if mid * mid <= n:
            lo = mid
        else:
            hi = mid - 1
    return lo
---
assert candidate(17) == 4
assert candidate(16) == 4
assert candidate(0) == 0
assert candidate(1) == 1
assert candidate(2) == 1
assert candidate(99) == 9
assert candidate(10 ** 10) == 10 ** 5
'''
