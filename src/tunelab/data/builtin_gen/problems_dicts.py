"""basic-python problems, part 4: dicts and recursion. Block format: see `problems_strings`."""

SOURCE = r'''
### invert_dict | dicts
Write a function that swaps the keys and values of a dictionary whose values are unique.
def invert_dict(d: dict) -> dict:
    """Return a dict mapping each value of d to its key (the values of d are distinct).

    >>> invert_dict({"a": 1, "b": 2})
    {1: 'a', 2: 'b'}
    >>> invert_dict({})
    {}
    """
    result = {}
    for key, value in d.items():
        result[value] = key
    return result
---
assert candidate({"a": 1, "b": 2}) == {1: "a", 2: "b"}
assert candidate({}) == {}
assert candidate({1: 1}) == {1: 1}
assert candidate({"x": "y", "y": "z"}) == {"y": "x", "z": "y"}

### merge_counts | dicts
Write a function that merges two dictionaries of counts, adding the values of keys present in both.
def merge_counts(a: dict, b: dict) -> dict:
    """Return a new dict with every key of a and b; a key in both gets the sum of its values.
    a and b are not modified.

    >>> merge_counts({"x": 1, "y": 2}, {"y": 3, "z": 4})
    {'x': 1, 'y': 5, 'z': 4}
    >>> merge_counts({}, {"a": 1})
    {'a': 1}
    """
    result = dict(a)
    for key, value in b.items():
        if key in result:
            result[key] = result[key] + value
        else:
            result[key] = value
    return result
---
assert candidate({"x": 1, "y": 2}, {"y": 3, "z": 4}) == {"x": 1, "y": 5, "z": 4}
assert candidate({}, {"a": 1}) == {"a": 1}
assert candidate({"a": 1}, {}) == {"a": 1}
assert candidate({}, {}) == {}
assert candidate({"a": 2}, {"a": 3}) == {"a": 5}
first = {"k": 1}
candidate(first, {"k": 1})
assert first == {"k": 1}

### word_count | dicts
Write a function that counts how often each word occurs in a text, ignoring case.
def word_count(text: str) -> dict:
    """Return a dict mapping each lower-cased whitespace-separated word of text to its count.

    >>> word_count("the cat and The hat")
    {'the': 2, 'cat': 1, 'and': 1, 'hat': 1}
    >>> word_count("")
    {}
    """
    counts = {}
    for word in text.lower().split():
        if word in counts:
            counts[word] += 1
        else:
            counts[word] = 1
    return counts
---
assert candidate("the cat and The hat") == {"the": 2, "cat": 1, "and": 1, "hat": 1}
assert candidate("") == {}
assert candidate("a a a") == {"a": 3}
assert candidate("One two\nTWO") == {"one": 1, "two": 2}

### group_by_length | dicts
Write a function that groups words by their length in a dictionary.
def group_by_length(words: list) -> dict:
    """Return a dict mapping each word length to the list of words of that length, in the
    order they appear in words.

    >>> group_by_length(["a", "bb", "cc", "d"])
    {1: ['a', 'd'], 2: ['bb', 'cc']}
    >>> group_by_length([])
    {}
    """
    groups = {}
    for word in words:
        key = len(word)
        if key not in groups:
            groups[key] = []
        groups[key].append(word)
    return groups
---
assert candidate(["a", "bb", "cc", "d"]) == {1: ["a", "d"], 2: ["bb", "cc"]}
assert candidate([]) == {}
assert candidate(["abc"]) == {3: ["abc"]}
assert candidate(["hi", "hello", "yo", "world"]) == {2: ["hi", "yo"], 5: ["hello", "world"]}

### most_frequent_word | dicts
Write a function that returns the most frequent word of a text; ties go to the word that occurs first.
def most_frequent_word(text: str) -> str:
    """Return the whitespace-separated word that occurs most often in text (case-sensitive);
    on a tie, the one that occurs first. The text has at least one word.

    >>> most_frequent_word("to be or not to be")
    'to'
    >>> most_frequent_word("x y y")
    'y'
    """
    words = text.split()
    counts = {}
    for word in words:
        counts[word] = counts.get(word, 0) + 1
    best = words[0]
    for word in words:
        if counts[word] > counts[best]:
            best = word
    return best
---
assert candidate("to be or not to be") == "to"
assert candidate("x y y") == "y"
assert candidate("solo") == "solo"
assert candidate("a b c") == "a"
assert candidate("b a a b b") == "b"

### dict_from_lists | dicts
Write a function that builds a dictionary from a list of keys and a list of values, ignoring extra items of the longer list.
def dict_from_lists(keys: list, values: list) -> dict:
    """Return {keys[i]: values[i]} for every i below the length of the shorter list.

    >>> dict_from_lists(["a", "b"], [1, 2])
    {'a': 1, 'b': 2}
    >>> dict_from_lists(["a", "b", "c"], [1])
    {'a': 1}
    """
    result = {}
    for i in range(min(len(keys), len(values))):
        result[keys[i]] = values[i]
    return result
---
assert candidate(["a", "b"], [1, 2]) == {"a": 1, "b": 2}
assert candidate(["a", "b", "c"], [1]) == {"a": 1}
assert candidate([], [1, 2]) == {}
assert candidate(["x"], [9, 8, 7]) == {"x": 9}
assert candidate([1, 2, 3], ["p", "q", "r"]) == {1: "p", 2: "q", 3: "r"}

### filter_by_value | dicts
Write a function that keeps only the entries of a dictionary whose value is at least a threshold.
def filter_by_value(d: dict, threshold: int) -> dict:
    """Return the entries of d whose value is greater than or equal to threshold.

    >>> filter_by_value({"a": 5, "b": 2, "c": 7}, 5)
    {'a': 5, 'c': 7}
    >>> filter_by_value({"a": 1}, 10)
    {}
    """
    result = {}
    for key in d:
        if d[key] >= threshold:
            result[key] = d[key]
    return result
---
assert candidate({"a": 5, "b": 2, "c": 7}, 5) == {"a": 5, "c": 7}
assert candidate({"a": 1}, 10) == {}
assert candidate({}, 0) == {}
assert candidate({"x": -1, "y": 0}, 0) == {"y": 0}
assert candidate({"p": 3, "q": 4}, 4) == {"q": 4}

### keys_sorted_by_value | dicts
Write a function that returns the keys of a dictionary sorted by their values, largest first, ties broken by key.
def keys_sorted_by_value(d: dict) -> list:
    """Return the keys of d ordered by decreasing value; keys with equal values are in
    increasing key order.

    >>> keys_sorted_by_value({"a": 1, "b": 3, "c": 2})
    ['b', 'c', 'a']
    >>> keys_sorted_by_value({"y": 1, "x": 1})
    ['x', 'y']
    """
    return sorted(d, key=lambda k: (-d[k], k))
---
assert candidate({"a": 1, "b": 3, "c": 2}) == ["b", "c", "a"]
assert candidate({"y": 1, "x": 1}) == ["x", "y"]
assert candidate({}) == []
assert candidate({"solo": 5}) == ["solo"]
assert candidate({"b": 2, "a": 2, "c": 9}) == ["c", "a", "b"]

### nested_get | dicts
Write a function that looks up a value in nested dictionaries by a dotted path, returning a default if any key is missing.
def nested_get(d: dict, path: str, default=None):
    """Follow the keys of the dotted path ("a.b.c") through nested dicts starting at d;
    return default if a key is missing or a value on the way is not a dict.

    >>> nested_get({"a": {"b": {"c": 1}}}, "a.b.c")
    1
    >>> nested_get({"a": {}}, "a.x", "none")
    'none'
    """
    current = d
    for key in path.split("."):
        if not isinstance(current, dict) or key not in current:
            return default
        current = current[key]
    return current
---
assert candidate({"a": {"b": {"c": 1}}}, "a.b.c") == 1
assert candidate({"a": {}}, "a.x", "none") == "none"
assert candidate({"a": 1}, "a") == 1
assert candidate({"a": 1}, "a.b") is None
assert candidate({}, "a", 0) == 0
assert candidate({"a": {"b": [1, 2]}}, "a.b") == [1, 2]

### top_k_frequent | dicts
Write a function that returns the k most frequent numbers of a list, most frequent first, ties broken by the smaller number.
def top_k_frequent(nums: list, k: int) -> list:
    """Return the k values that occur most often in nums, most frequent first; values with
    equal counts are ordered smallest first. k is at most the number of distinct values.

    >>> top_k_frequent([1, 1, 1, 2, 2, 3], 2)
    [1, 2]
    >>> top_k_frequent([4, 5, 5, 4, 6], 2)
    [4, 5]
    """
    counts = {}
    for n in nums:
        counts[n] = counts.get(n, 0) + 1
    ordered = sorted(counts, key=lambda x: (-counts[x], x))
    return ordered[:k]
---
assert candidate([1, 1, 1, 2, 2, 3], 2) == [1, 2]
assert candidate([4, 5, 5, 4, 6], 2) == [4, 5]
assert candidate([7], 1) == [7]
assert candidate([3, 2, 1], 3) == [1, 2, 3]
assert candidate([9, 9, 8, 8, 8, 7], 1) == [8]
assert candidate([1, 2, 2, 3, 3, 3], 3) == [3, 2, 1]

### key_with_max_value | dicts
Write a function that returns the key of a dictionary that has the largest value (the first such key on a tie).
def key_with_max_value(d: dict):
    """Return the key of d with the largest value; on a tie, the key that comes first in d.
    Return None for an empty dict.

    >>> key_with_max_value({"a": 3, "b": 7, "c": 7})
    'b'
    >>> key_with_max_value({}) is None
    True
    """
    best_key = None
    for key in d:
        if best_key is None or d[key] > d[best_key]:
            best_key = key
    return best_key
---
assert candidate({"a": 3, "b": 7, "c": 7}) == "b"
assert candidate({}) is None
assert candidate({"x": -1}) == "x"
assert candidate({"a": 1, "b": 0}) == "a"
assert candidate({"a": 0, "b": 1}) == "b"

### char_positions | dicts
Write a function that maps each character of a string to the list of positions where it occurs.
def char_positions(s: str) -> dict:
    """Return a dict mapping each character of s to the increasing list of its indices.

    >>> char_positions("abca")
    {'a': [0, 3], 'b': [1], 'c': [2]}
    >>> char_positions("")
    {}
    """
    positions = {}
    for i, ch in enumerate(s):
        positions.setdefault(ch, []).append(i)
    return positions
---
assert candidate("abca") == {"a": [0, 3], "b": [1], "c": [2]}
assert candidate("") == {}
assert candidate("zzz") == {"z": [0, 1, 2]}
assert candidate("ab") == {"a": [0], "b": [1]}

### recursive_sum | recursion
Write a recursive function that returns the sum of a list of numbers.
def recursive_sum(nums: list) -> int:
    """Return the sum of nums, computed recursively (no loops and no sum()).

    >>> recursive_sum([1, 2, 3])
    6
    >>> recursive_sum([])
    0
    """
    if not nums:
        return 0
    return nums[0] + recursive_sum(nums[1:])
---
assert candidate([1, 2, 3]) == 6
assert candidate([]) == 0
assert candidate([5]) == 5
assert candidate([-1, 1, -1]) == -1
assert candidate(list(range(50))) == 1225

### power_set | recursion
Write a recursive function that returns all subsets of a list.
def power_set(items: list) -> list:
    """Return all subsets of items as lists; elements keep their order inside a subset, and
    the subsets without items[0] come before those with it (recursively).

    >>> power_set([1, 2])
    [[], [2], [1], [1, 2]]
    >>> power_set([])
    [[]]
    """
    if not items:
        return [[]]
    rest = power_set(items[1:])
    with_first = []
    for subset in rest:
        with_first.append([items[0]] + subset)
    return rest + with_first
---
assert candidate([1, 2]) == [[], [2], [1], [1, 2]]
assert candidate([]) == [[]]
assert candidate(["a"]) == [[], ["a"]]
assert len(candidate([1, 2, 3, 4])) == 16
assert candidate([1, 2, 3]) == [[], [3], [2], [2, 3], [1], [1, 3], [1, 2], [1, 2, 3]]

### permutations | recursion
Write a recursive function that returns all permutations of a string in sorted order.
def permutations(s: str) -> list:
    """Return the sorted list of all distinct orderings of the characters of s.

    >>> permutations("abc")
    ['abc', 'acb', 'bac', 'bca', 'cab', 'cba']
    >>> permutations("aa")
    ['aa']
    """
    if len(s) <= 1:
        return [s]
    result = set()
    for i in range(len(s)):
        for rest in permutations(s[:i] + s[i + 1:]):
            result.add(s[i] + rest)
    return sorted(result)
---
assert candidate("abc") == ["abc", "acb", "bac", "bca", "cab", "cba"]
assert candidate("aa") == ["aa"]
assert candidate("") == [""]
assert candidate("x") == ["x"]
assert candidate("ab") == ["ab", "ba"]
assert len(candidate("abcd")) == 24
assert candidate("aab") == ["aab", "aba", "baa"]

### hanoi_moves | recursion
Write a recursive function that lists the moves solving the Towers of Hanoi for n disks.
def hanoi_moves(n: int, source: str = "A", target: str = "C", spare: str = "B") -> list:
    """Return the list of moves (from_peg, to_peg) that move n disks from source to target,
    never placing a larger disk on a smaller one.

    >>> hanoi_moves(2)
    [('A', 'B'), ('A', 'C'), ('B', 'C')]
    >>> hanoi_moves(0)
    []
    """
    if n == 0:
        return []
    moves = hanoi_moves(n - 1, source, spare, target)
    moves.append((source, target))
    moves += hanoi_moves(n - 1, spare, target, source)
    return moves
---
assert candidate(2) == [("A", "B"), ("A", "C"), ("B", "C")]
assert candidate(0) == []
assert candidate(1) == [("A", "C")]
assert len(candidate(5)) == 31
assert candidate(3)[3] == ("A", "C")
assert candidate(1, "X", "Y", "Z") == [("X", "Y")]

### binary_strings | recursion
Write a recursive function that generates all binary strings of length n in increasing order.
def binary_strings(n: int) -> list:
    """Return all strings of n characters '0'/'1', in increasing (lexicographic) order.

    >>> binary_strings(2)
    ['00', '01', '10', '11']
    >>> binary_strings(0)
    ['']
    """
    if n == 0:
        return [""]
    shorter = binary_strings(n - 1)
    return ["0" + s for s in shorter] + ["1" + s for s in shorter]
---
assert candidate(2) == ["00", "01", "10", "11"]
assert candidate(0) == [""]
assert candidate(1) == ["0", "1"]
assert len(candidate(5)) == 32
assert candidate(3)[5] == "101"

### grid_paths | recursion
Write a recursive function that counts the paths from the top-left to the bottom-right of a grid moving only right or down.
def grid_paths(rows: int, cols: int) -> int:
    """Return the number of ways to walk from the top-left cell to the bottom-right cell of a
    rows x cols grid (both >= 1) moving one cell right or down at a time.

    >>> grid_paths(2, 2)
    2
    >>> grid_paths(3, 3)
    6
    """
    if rows == 1 or cols == 1:
        return 1
    return grid_paths(rows - 1, cols) + grid_paths(rows, cols - 1)
---
assert candidate(2, 2) == 2
assert candidate(3, 3) == 6
assert candidate(1, 5) == 1
assert candidate(5, 1) == 1
assert candidate(3, 4) == 10
assert candidate(4, 6) == 56

### nesting_depth | recursion
Write a recursive function that returns how deeply lists are nested inside a list.
def nesting_depth(value) -> int:
    """Return 0 if value is not a list; otherwise 1 plus the largest depth of its elements.

    >>> nesting_depth([1, [2, [3]], 4])
    3
    >>> nesting_depth(5)
    0
    """
    if not isinstance(value, list):
        return 0
    deepest = 0
    for item in value:
        deepest = max(deepest, nesting_depth(item))
    return 1 + deepest
---
assert candidate([1, [2, [3]], 4]) == 3
assert candidate(5) == 0
assert candidate([]) == 1
assert candidate([[]]) == 2
assert candidate([1, 2, 3]) == 1
assert candidate([[[[]]], [1]]) == 4

### deep_flatten | recursion
Write a recursive function that flattens arbitrarily nested lists into one flat list.
def deep_flatten(items: list) -> list:
    """Return all non-list values inside the nested lists items, in left-to-right order.

    >>> deep_flatten([1, [2, [3, [4]]], 5])
    [1, 2, 3, 4, 5]
    >>> deep_flatten([[], [[]]])
    []
    """
    result = []
    for item in items:
        if isinstance(item, list):
            result.extend(deep_flatten(item))
        else:
            result.append(item)
    return result
---
assert candidate([1, [2, [3, [4]]], 5]) == [1, 2, 3, 4, 5]
assert candidate([[], [[]]]) == []
assert candidate([]) == []
assert candidate([1, 2]) == [1, 2]
assert candidate([["a"], "b", [["c"]]]) == ["a", "b", "c"]

### climb_stairs | recursion
Write a function that counts the ways to climb n stairs taking 1 or 2 steps at a time.
def climb_stairs(n: int) -> int:
    """Return the number of ways to climb n >= 0 stairs with steps of 1 or 2 (1 way for 0).
    Use recursion with memoisation.

    >>> climb_stairs(3)
    3
    >>> climb_stairs(5)
    8
    """
    memo = {0: 1, 1: 1}

    def ways(k: int) -> int:
        if k not in memo:
            memo[k] = ways(k - 1) + ways(k - 2)
        return memo[k]

    return ways(n)
---
assert candidate(3) == 3
assert candidate(5) == 8
assert candidate(0) == 1
assert candidate(1) == 1
assert candidate(2) == 2
assert candidate(30) == 1346269

### count_occurrences | recursion
Write a recursive function that counts how many times a value appears in a list.
def count_occurrences(items: list, target) -> int:
    """Return how many elements of items equal target, using recursion instead of a loop.

    >>> count_occurrences([1, 2, 1, 3, 1], 1)
    3
    >>> count_occurrences([], 5)
    0
    """
    if not items:
        return 0
    rest = count_occurrences(items[1:], target)
    if items[0] == target:
        return rest + 1
    return rest
---
assert candidate([1, 2, 1, 3, 1], 1) == 3
assert candidate([], 5) == 0
assert candidate([2, 2], 3) == 0
assert candidate(["a"], "a") == 1
assert candidate([0, 0, 0, 0], 0) == 4
'''
