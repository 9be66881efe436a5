"""basic-python problems, part 2: lists. Block format: see `problems_strings`."""

SOURCE = r'''
### sum_of_evens | lists
Write a function that returns the sum of the even numbers in a list.
def sum_of_evens(nums: list) -> int:
    """Return the sum of the even integers in nums.

    >>> sum_of_evens([1, 2, 3, 4])
    6
    >>> sum_of_evens([1, 3])
    0
    """
    total = 0
    for n in nums:
        if n % 2 == 0:
            total += n
    return total
---
assert candidate([1, 2, 3, 4]) == 6
assert candidate([1, 3]) == 0
assert candidate([]) == 0
assert candidate([-2, -4, 5]) == -6
assert candidate([0, 10, 11]) == 10
assert candidate([2]) == 2

### max_of_list | lists
Write a function that returns the largest number in a non-empty list without using max().
def max_of_list(nums: list) -> int:
    """Return the largest element of the non-empty list nums, without calling max().

    >>> max_of_list([3, 7, 2])
    7
    >>> max_of_list([-5, -1, -9])
    -1
    """
    best = nums[0]
    for n in nums[1:]:
        if n > best:
            best = n
    return best
---
assert candidate([3, 7, 2]) == 7
assert candidate([-5, -1, -9]) == -1
assert candidate([4]) == 4
assert candidate([1, 2, 3, 4, 5]) == 5
assert candidate([5, 4, 3, 2, 1]) == 5
assert candidate([2, 2, 2]) == 2

### second_largest | lists
Write a function that returns the second largest distinct value in a list, or None if there is no such value.
def second_largest(nums: list):
    """Return the second largest distinct value in nums, or None if nums has fewer than two
    distinct values.

    >>> second_largest([4, 1, 7, 7, 3])
    4
    >>> second_largest([5, 5]) is None
    True
    """
    first = None
    second = None
    for n in nums:
        if first is None or n > first:
            if first is not None:
                second = first
            first = n
        elif n != first and (second is None or n > second):
            second = n
    return second
---
assert candidate([4, 1, 7, 7, 3]) == 4
assert candidate([5, 5]) is None
assert candidate([]) is None
assert candidate([1, 2]) == 1
assert candidate([2, 1]) == 1
assert candidate([-3, -1, -2]) == -2
assert candidate([10, 9, 8, 10]) == 9

### running_sum | lists
Write a function that returns the running (cumulative) sums of a list.
def running_sum(nums: list) -> list:
    """Return a list whose i-th element is nums[0] + ... + nums[i].

    >>> running_sum([1, 2, 3, 4])
    [1, 3, 6, 10]
    >>> running_sum([])
    []
    """
    result = []
    total = 0
    for n in nums:
        total += n
        result.append(total)
    return result
---
assert candidate([1, 2, 3, 4]) == [1, 3, 6, 10]
assert candidate([]) == []
assert candidate([5]) == [5]
assert candidate([1, -1, 1, -1]) == [1, 0, 1, 0]
assert candidate([0, 0, 3]) == [0, 0, 3]

### remove_duplicates | lists
Write a function that removes duplicates from a list while keeping the original order.
def remove_duplicates(items: list) -> list:
    """Return the items of the list without repeats, each kept at its first position.

    >>> remove_duplicates([3, 1, 3, 2, 1])
    [3, 1, 2]
    >>> remove_duplicates(["a", "a"])
    ['a']
    """
    seen = set()
    result = []
    for item in items:
        if item not in seen:
            seen.add(item)
            result.append(item)
    return result
---
assert candidate([3, 1, 3, 2, 1]) == [3, 1, 2]
assert candidate(["a", "a"]) == ["a"]
assert candidate([]) == []
assert candidate([1, 2, 3]) == [1, 2, 3]
assert candidate([7, 7, 7, 8]) == [7, 8]

### flatten_once | lists
Write a function that flattens a list of lists by one level.
def flatten_once(lists: list) -> list:
    """Return the elements of the inner lists of lists, in order, as one list.

    >>> flatten_once([[1, 2], [3], []])
    [1, 2, 3]
    >>> flatten_once([])
    []
    """
    result = []
    for inner in lists:
        for item in inner:
            result.append(item)
    return result
---
assert candidate([[1, 2], [3], []]) == [1, 2, 3]
assert candidate([]) == []
assert candidate([[], []]) == []
assert candidate([["a"], ["b", "c"]]) == ["a", "b", "c"]
assert candidate([[1, [2]], [3]]) == [1, [2], 3]

### chunk_list | lists
Write a function that splits a list into consecutive chunks of a given size (the last chunk may be shorter).
def chunk_list(items: list, size: int) -> list:
    """Split items into consecutive lists of length size; the last one may be shorter.
    size is at least 1.

    >>> chunk_list([1, 2, 3, 4, 5], 2)
    [[1, 2], [3, 4], [5]]
    >>> chunk_list([1, 2, 3], 3)
    [[1, 2, 3]]
    """
    chunks = []
    for start in range(0, len(items), size):
        chunks.append(items[start:start + size])
    return chunks
---
assert candidate([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
assert candidate([1, 2, 3], 3) == [[1, 2, 3]]
assert candidate([], 4) == []
assert candidate([1, 2, 3], 1) == [[1], [2], [3]]
assert candidate([1, 2], 5) == [[1, 2]]
assert candidate(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]

### rotate_left | lists
Write a function that rotates a list to the left by k positions.
def rotate_left(items: list, k: int) -> list:
    """Return items rotated left by k positions (k may exceed the length; k >= 0).

    >>> rotate_left([1, 2, 3, 4, 5], 2)
    [3, 4, 5, 1, 2]
    >>> rotate_left([1, 2, 3], 4)
    [2, 3, 1]
    """
    if not items:
        return []
    k = k % len(items)
    return items[k:] + items[:k]
---
assert candidate([1, 2, 3, 4, 5], 2) == [3, 4, 5, 1, 2]
assert candidate([1, 2, 3], 4) == [2, 3, 1]
assert candidate([], 3) == []
assert candidate([1, 2, 3], 0) == [1, 2, 3]
assert candidate([1, 2, 3], 3) == [1, 2, 3]
assert candidate(["a", "b"], 1) == ["b", "a"]

### pairwise_differences | lists
Write a function that returns the differences between consecutive elements of a list.
def pairwise_differences(nums: list) -> list:
    """Return [nums[1] - nums[0], nums[2] - nums[1], ...].

    >>> pairwise_differences([1, 4, 9, 16])
    [3, 5, 7]
    >>> pairwise_differences([5])
    []
    """
    diffs = []
    for i in range(1, len(nums)):
        diffs.append(nums[i] - nums[i - 1])
    return diffs
---
assert candidate([1, 4, 9, 16]) == [3, 5, 7]
assert candidate([5]) == []
assert candidate([]) == []
assert candidate([10, 7]) == [-3]
assert candidate([2, 2, 2]) == [0, 0]
assert candidate([0, 5, 1]) == [5, -4]

### count_positive | lists
Write a function that counts the strictly positive numbers in a list.
def count_positive(nums: list) -> int:
    """Return how many numbers in nums are greater than zero.

    >>> count_positive([1, -2, 3, 0])
    2
    >>> count_positive([])
    0
    """
    count = 0
    for n in nums:
        if n > 0:
            count += 1
    return count
---
assert candidate([1, -2, 3, 0]) == 2
assert candidate([]) == 0
assert candidate([0, 0]) == 0
assert candidate([-1, -5]) == 0
assert candidate([4, 5, 6]) == 3
assert candidate([0.5, -0.5]) == 1

### merge_sorted | lists
Write a function that merges two sorted lists into one sorted list without calling sort.
def merge_sorted(a: list, b: list) -> list:
    """Merge the ascending lists a and b into one ascending list (without sorting).

    >>> merge_sorted([1, 3, 5], [2, 4, 6])
    [1, 2, 3, 4, 5, 6]
    >>> merge_sorted([], [1])
    [1]
    """
    result = []
    i = 0
    j = 0
    while i < len(a) and j < len(b):
        if a[i] <= b[j]:
            result.append(a[i])
            i += 1
        else:
            result.append(b[j])
            j += 1
    result.extend(a[i:])
    result.extend(b[j:])
    return result
---
assert candidate([1, 3, 5], [2, 4, 6]) == [1, 2, 3, 4, 5, 6]
assert candidate([], [1]) == [1]
assert candidate([1], []) == [1]
assert candidate([], []) == []
assert candidate([1, 1, 2], [1, 3]) == [1, 1, 1, 2, 3]
assert candidate([5, 6, 7], [1, 2]) == [1, 2, 5, 6, 7]

### find_index | lists
Write a function that returns the index of the first occurrence of a value in a list, or -1 if it is not there.
def find_index(items: list, target) -> int:
    """Return the smallest index i with items[i] == target, or -1 if target is absent.

    >>> find_index([5, 3, 7, 3], 3)
    1
    >>> find_index([1, 2], 9)
    -1
    """
    for i in range(len(items)):
        if items[i] == target:
            return i
    return -1
---
assert candidate([5, 3, 7, 3], 3) == 1
assert candidate([1, 2], 9) == -1
assert candidate([], 1) == -1
assert candidate([4], 4) == 0
assert candidate([1, 2, 3], 3) == 2
assert candidate(["a", "b"], "b") == 1

### binary_search | lists
Write a function that finds a value in a sorted list with binary search and returns its index, or -1.
def binary_search(nums: list, target: int) -> int:
    """Return an index of target in the ascending list nums (no duplicates), or -1.
    Use binary search.

    >>> binary_search([1, 3, 5, 7, 9], 7)
    3
    >>> binary_search([1, 3, 5], 4)
    -1
    """
    lo = 0
    hi = len(nums) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if nums[mid] == target:
            return mid
        if nums[mid] < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1
---
assert candidate([1, 3, 5, 7, 9], 7) == 3
assert candidate([1, 3, 5], 4) == -1
assert candidate([], 1) == -1
assert candidate([2], 2) == 0
assert candidate([1, 3, 5, 7, 9], 1) == 0
assert candidate([1, 3, 5, 7, 9], 9) == 4
assert candidate([1, 3, 5, 7, 9], 10) == -1
assert candidate([1, 3, 5, 7, 9], 0) == -1
assert candidate([1, 2, 3], 2) == 1
assert candidate([1, 2, 3, 4, 5, 6], 5) == 4

### move_zeros | lists
Write a function that moves all zeros of a list to the end while keeping the order of the other elements.
def move_zeros(nums: list) -> list:
    """Return nums with every 0 moved to the end; the other numbers keep their order.

    >>> move_zeros([0, 1, 0, 3, 12])
    [1, 3, 12, 0, 0]
    >>> move_zeros([0])
    [0]
    """
    non_zero = []
    zeros = 0
    for n in nums:
        if n == 0:
            zeros += 1
        else:
            non_zero.append(n)
    return non_zero + [0] * zeros
---
assert candidate([0, 1, 0, 3, 12]) == [1, 3, 12, 0, 0]
assert candidate([0]) == [0]
assert candidate([]) == []
assert candidate([1, 2]) == [1, 2]
assert candidate([0, 0, 1]) == [1, 0, 0]
assert candidate([4, 0, -2, 0]) == [4, -2, 0, 0]

### interleave | lists
Write a function that interleaves two lists, taking elements alternately, and appends whatever is left of the longer list.
def interleave(a: list, b: list) -> list:
    """Return [a[0], b[0], a[1], b[1], ...]; the rest of the longer list goes at the end.

    >>> interleave([1, 2, 3], ["x", "y"])
    [1, 'x', 2, 'y', 3]
    >>> interleave([], [1, 2])
    [1, 2]
    """
    result = []
    n = min(len(a), len(b))
    for i in range(n):
        result.append(a[i])
        result.append(b[i])
    result.extend(a[n:])
    result.extend(b[n:])
    return result
---
assert candidate([1, 2, 3], ["x", "y"]) == [1, "x", 2, "y", 3]
assert candidate([], [1, 2]) == [1, 2]
assert candidate([1, 2], []) == [1, 2]
assert candidate([], []) == []
assert candidate([1], [2, 3, 4]) == [1, 2, 3, 4]
assert candidate(["a", "b"], ["c", "d"]) == ["a", "c", "b", "d"]

### max_subarray_sum | lists
Write a function that returns the largest sum of a contiguous, non-empty part of a list of integers.
def max_subarray_sum(nums: list) -> int:
    """Return the largest sum of a non-empty contiguous sublist of nums (nums is not empty).

    >>> max_subarray_sum([-2, 1, -3, 4, -1, 2, 1, -5, 4])
    6
    >>> max_subarray_sum([-3, -1, -2])
    -1
    """
    best = nums[0]
    current = nums[0]
    for n in nums[1:]:
        current = max(n, current + n)
        best = max(best, current)
    return best
---
assert candidate([-2, 1, -3, 4, -1, 2, 1, -5, 4]) == 6
assert candidate([-3, -1, -2]) == -1
assert candidate([5]) == 5
assert candidate([1, 2, 3]) == 6
assert candidate([2, -1, 2]) == 3
assert candidate([-1, 4, -10, 3]) == 4

### two_sum | lists
Write a function that finds the indices of two different elements of a list that add up to a target.
def two_sum(nums: list, target: int) -> tuple:
    """Return a tuple (i, j) with i < j and nums[i] + nums[j] == target; the pair with the
    smallest j is returned (and for that j the smallest i). Return None if there is none.

    >>> two_sum([2, 7, 11, 15], 9)
    (0, 1)
    >>> two_sum([3, 2, 4], 6)
    (1, 2)
    """
    seen = {}
    for j in range(len(nums)):
        need = target - nums[j]
        if need in seen:
            return (seen[need], j)
        if nums[j] not in seen:
            seen[nums[j]] = j
    return None
---
assert candidate([2, 7, 11, 15], 9) == (0, 1)
assert candidate([3, 2, 4], 6) == (1, 2)
assert candidate([3, 3], 6) == (0, 1)
assert candidate([1, 2, 3], 10) is None
assert candidate([], 0) is None
assert candidate([1, 5, 1, 5], 6) == (0, 1)
assert candidate([0, 4, 3, 0], 0) == (0, 3)

### most_common_element | lists
Write a function that returns the most frequent element of a list; on a tie, the one that appears first.
def most_common_element(items: list):
    """Return the element of the non-empty list items that occurs most often; on a tie, the
    one whose first occurrence comes first.

    >>> most_common_element([1, 3, 3, 2, 1, 3])
    3
    >>> most_common_element(["b", "a", "a", "b"])
    'b'
    """
    counts = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    best = items[0]
    for item in items:
        if counts[item] > counts[best]:
            best = item
    return best
---
assert candidate([1, 3, 3, 2, 1, 3]) == 3
assert candidate(["b", "a", "a", "b"]) == "b"
assert candidate([7]) == 7
assert candidate([1, 2, 3]) == 1
assert candidate([4, 5, 5]) == 5
assert candidate([0, 1, 1, 0, 1]) == 1

### product_of_list | lists
Write a function that multiplies all numbers of a list together (the product of an empty list is 1).
def product_of_list(nums: list) -> int:
    """Return the product of the numbers in nums; 1 for an empty list.

    >>> product_of_list([2, 3, 4])
    24
    >>> product_of_list([])
    1
    """
    product = 1
    for n in nums:
        product *= n
    return product
---
assert candidate([2, 3, 4]) == 24
assert candidate([]) == 1
assert candidate([5]) == 5
assert candidate([1, 0, 7]) == 0
assert candidate([-2, 3]) == -6
assert candidate([-1, -1, -1]) == -1

### split_even_odd | lists
Write a function that splits a list of integers into its even and its odd numbers.
def split_even_odd(nums: list) -> tuple:
    """Return (evens, odds): the even and the odd numbers of nums, each in original order.

    >>> split_even_odd([1, 2, 3, 4, 5])
    ([2, 4], [1, 3, 5])
    >>> split_even_odd([])
    ([], [])
    """
    evens = []
    odds = []
    for n in nums:
        if n % 2 == 0:
            evens.append(n)
        else:
            odds.append(n)
    return (evens, odds)
---
assert candidate([1, 2, 3, 4, 5]) == ([2, 4], [1, 3, 5])
assert candidate([]) == ([], [])
assert candidate([2, 4]) == ([2, 4], [])
assert candidate([7]) == ([], [7])
assert candidate([-3, -2, 0]) == ([-2, 0], [-3])

### transpose | lists
Write a function that transposes a matrix given as a list of rows.
def transpose(matrix: list) -> list:
    """Return the transpose of matrix (a list of equally long rows): rows become columns.

    >>> transpose([[1, 2, 3], [4, 5, 6]])
    [[1, 4], [2, 5], [3, 6]]
    >>> transpose([])
    []
    """
    if not matrix:
        return []
    rows = len(matrix)
    cols = len(matrix[0])
    result = []
    for c in range(cols):
        column = []
        for r in range(rows):
            column.append(matrix[r][c])
        result.append(column)
    return result
---
assert candidate([[1, 2, 3], [4, 5, 6]]) == [[1, 4], [2, 5], [3, 6]]
assert candidate([]) == []
assert candidate([[1]]) == [[1]]
assert candidate([[1, 2]]) == [[1], [2]]
assert candidate([[1], [2], [3]]) == [[1, 2, 3]]
assert candidate([[1, 2], [3, 4]]) == [[1, 3], [2, 4]]

### diagonal_sum | lists
Write a function that sums both diagonals of a square matrix, counting the centre only once.
def diagonal_sum(matrix: list) -> int:
    """Return the sum of the main and the anti-diagonal of the square matrix; an element on
    both diagonals (the centre of an odd-sized matrix) is counted once.

    >>> diagonal_sum([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    25
    >>> diagonal_sum([[1, 2], [3, 4]])
    10
    """
    n = len(matrix)
    total = 0
    for i in range(n):
        total += matrix[i][i]
        if i != n - 1 - i:
            total += matrix[i][n - 1 - i]
    return total
---
assert candidate([[1, 2, 3], [4, 5, 6], [7, 8, 9]]) == 25
assert candidate([[1, 2], [3, 4]]) == 10
assert candidate([[5]]) == 5
assert candidate([]) == 0
assert candidate([[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 1]]) == 8
assert candidate([[2, 0, 3], [0, 4, 0], [5, 0, 6]]) == 20

### longest_increasing_run | lists
Write a function that returns the length of the longest strictly increasing run of consecutive elements in a list.
def longest_increasing_run(nums: list) -> int:
    """Return the length of the longest contiguous strictly increasing part of nums
    (0 for an empty list).

    >>> longest_increasing_run([1, 2, 2, 3, 4, 5, 1])
    4
    >>> longest_increasing_run([5, 4, 3])
    1
    """
    if not nums:
        return 0
    best = 1
    current = 1
    for i in range(1, len(nums)):
        if nums[i] > nums[i - 1]:
            current += 1
            if current > best:
                best = current
        else:
            current = 1
    return best
---
assert candidate([1, 2, 2, 3, 4, 5, 1]) == 4
assert candidate([5, 4, 3]) == 1
assert candidate([]) == 0
assert candidate([7]) == 1
assert candidate([1, 2, 3]) == 3
assert candidate([3, 1, 2, 0, 1, 2, 3]) == 4

### mean | lists
Write a function that computes the arithmetic mean of a non-empty list of numbers.
def mean(nums: list) -> float:
    """Return the average of the numbers in the non-empty list nums.

    >>> mean([1, 2, 3, 4])
    2.5
    >>> mean([5])
    5.0
    """
    total = 0
    for n in nums:
        total += n
    return total / len(nums)
---
assert candidate([1, 2, 3, 4]) == 2.5
assert candidate([5]) == 5.0
assert candidate([0, 0, 0]) == 0.0
assert candidate([-1, 1]) == 0.0
assert abs(candidate([1, 2]) - 1.5) < 1e-9
assert abs(candidate([10, 20, 60]) - 30.0) < 1e-9

### median | lists
Write a function that returns the median of a non-empty list of numbers.
def median(nums: list) -> float:
    """Return the median of the non-empty list nums: the middle value of the sorted list, or
    the mean of the two middle values when the length is even.

    >>> median([3, 1, 2])
    2
    >>> median([4, 1, 3, 2])
    2.5
    """
    ordered = sorted(nums)
    n = len(ordered)
    mid = n // 2
    if n % 2 == 1:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2
---
assert candidate([3, 1, 2]) == 2
assert candidate([4, 1, 3, 2]) == 2.5
assert candidate([7]) == 7
assert candidate([1, 2]) == 1.5
assert candidate([5, 5, 1, 9, 2]) == 5
assert candidate([10, 0, 4, 6]) == 5.0

### min_max | lists
Write a function that returns both the smallest and the largest number of a list in one pass.
def min_max(nums: list) -> tuple:
    """Return (smallest, largest) of the non-empty list nums, found in a single loop.

    >>> min_max([3, 9, 1, 4])
    (1, 9)
    >>> min_max([2])
    (2, 2)
    """
    low = nums[0]
    high = nums[0]
    for n in nums:
        if n < low:
            low = n
        if n > high:
            high = n
    return (low, high)
---
assert candidate([3, 9, 1, 4]) == (1, 9)
assert candidate([2]) == (2, 2)
assert candidate([-1, -5, 0]) == (-5, 0)
assert candidate([1, 2, 3]) == (1, 3)
assert candidate([3, 2, 1]) == (1, 3)

### count_inversions | lists
Write a function that counts the pairs of positions (i, j) with i < j whose elements are out of order.
def count_inversions(nums: list) -> int:
    """Return the number of pairs i < j with nums[i] > nums[j].

    >>> count_inversions([2, 4, 1, 3, 5])
    3
    >>> count_inversions([1, 2, 3])
    0
    """
    count = 0
    for i in range(len(nums)):
        for j in range(i + 1, len(nums)):
            if nums[i] > nums[j]:
                count += 1
    return count
---
assert candidate([2, 4, 1, 3, 5]) == 3
assert candidate([1, 2, 3]) == 0
assert candidate([]) == 0
assert candidate([3, 2, 1]) == 3
assert candidate([1, 1, 1]) == 0
assert candidate([5, 1, 4, 2]) == 4

### cumulative_max | lists
Write a function that returns, for each position of a list, the largest value seen so far.
def cumulative_max(nums: list) -> list:
    """Return a list whose i-th element is the maximum of nums[0..i].

    >>> cumulative_max([1, 3, 2, 5, 4])
    [1, 3, 3, 5, 5]
    >>> cumulative_max([])
    []
    """
    result = []
    for i in range(len(nums)):
        if i == 0 or nums[i] > result[-1]:
            result.append(nums[i])
        else:
            result.append(result[-1])
    return result
---
assert candidate([1, 3, 2, 5, 4]) == [1, 3, 3, 5, 5]
assert candidate([]) == []
assert candidate([4]) == [4]
assert candidate([5, 4, 3]) == [5, 5, 5]
assert candidate([-2, -3, -1]) == [-2, -2, -1]

### missing_number | lists
Write a function that finds the one number missing from a list containing all of 0..n except one.
def missing_number(nums: list) -> int:
    """nums holds n distinct numbers taken from 0, 1, ..., n; return the one that is missing.

    >>> missing_number([3, 0, 1])
    2
    >>> missing_number([0, 1])
    2
    """
    n = len(nums)
    expected = n * (n + 1) // 2
    actual = 0
    for x in nums:
        actual += x
    return expected - actual
---
assert candidate([3, 0, 1]) == 2
assert candidate([0, 1]) == 2
assert candidate([1]) == 0
assert candidate([0]) == 1
assert candidate([]) == 0
assert candidate([9, 6, 4, 2, 3, 5, 7, 0, 1]) == 8
'''
