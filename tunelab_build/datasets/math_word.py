"""Build `math-word`: GSM8K-format word problems generated from seeded templates.

Each template draws its numbers from a `random.Random` seeded by the split and index, writes the
question, and writes a step-by-step solution whose arithmetic carries GSM8K's calculator
annotations (`3*4 = <<3*4=12>>12`) and ends with `#### <answer>`. Every template also has an
independent closed-form `solve(params)`; the generator checks that the worked steps reach the
same number, and the unit tests check both again on the shipped file.

The test split is generated first from seeds `test:i`; the train split from seeds `train:i`,
skipping any question already used, so the splits are disjoint by question text. Run:

    python -m tunelab_build.datasets.math_word
"""

from __future__ import annotations

import argparse
import ast
import operator
import random
import re
from collections.abc import Callable
from pathlib import Path

from tunelab_build.datasets import DATASETS_DIR, write_jsonl

NAME = "math-word"
SIZES = {"test": 300, "train": 2000}

PEOPLE = [("Maria", "she"), ("James", "he"), ("Aisha", "she"), ("Kenji", "he"), ("Sofia", "she"),
          ("Liam", "he"), ("Priya", "she"), ("Mateo", "he"), ("Chloe", "she"), ("Omar", "he"),
          ("Elena", "she"), ("Noah", "he"), ("Fatima", "she"), ("Lucas", "he"), ("Mei", "she"),
          ("Daniel", "he"), ("Zoe", "she"), ("Ivan", "he"), ("Nadia", "she"), ("Samuel", "he")]
ITEMS = [("notebooks", 2, 9), ("pens", 1, 4), ("apples", 1, 3), ("books", 6, 15), ("mugs", 3, 12),
         ("T-shirts", 8, 20), ("candles", 2, 7), ("plants", 4, 15), ("puzzles", 5, 14), ("scarves", 6, 18)]
GOODS = ["bike", "guitar", "tablet", "skateboard", "camera", "telescope"]

_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def calc(expr: str) -> str:
    """'3*4' -> '3*4 = <<3*4=12>>12' (the value must be a whole number)."""
    value = evaluate(expr)
    assert value == int(value) and value >= 0, (expr, value)
    return f"{expr} = <<{expr}={int(value)}>>{int(value)}"


def evaluate(expr: str) -> float:
    """Value of + - * / arithmetic on numbers, without eval()."""
    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        raise ValueError(f"not plain arithmetic: {expr!r}")

    return walk(ast.parse(expr, mode="eval"))


def _person(rng: random.Random) -> tuple[str, str, str]:
    name, she = rng.choice(PEOPLE)
    return name, she, {"she": "her", "he": "his"}[she]


# ---- templates: each returns (question, steps, params); SOLVERS holds the closed forms ----------


def shopping_change(rng: random.Random):
    name, she, _ = _person(rng)
    (item1, lo1, hi1), (item2, lo2, hi2) = rng.sample(ITEMS, 2)
    n1, p1, n2, p2 = rng.randint(2, 9), rng.randint(lo1, hi1), rng.randint(2, 9), rng.randint(lo2, hi2)
    total = n1 * p1 + n2 * p2
    bill = next(b for b in (20, 50, 100, 200, 500) if b > total)
    q = (f"{name} buys {n1} {item1} for ${p1} each and {n2} {item2} for ${p2} each. {she.capitalize()} "
         f"pays with ${bill}. How much change, in dollars, does {she} get back?")
    c1, c2 = n1 * p1, n2 * p2
    steps = [f"The {item1} cost {calc(f'{n1}*{p1}')} dollars.",
             f"The {item2} cost {calc(f'{n2}*{p2}')} dollars.",
             f"Together they cost {calc(f'{c1}+{c2}')} dollars.",
             f"So {she} gets back {calc(f'{bill}-{total}')} dollars."]
    return q, steps, {"n1": n1, "p1": p1, "n2": n2, "p2": p2, "bill": bill}


def rate_distance(rng: random.Random):
    name, she, _ = _person(rng)
    s1, h1, s2, h2 = rng.randint(30, 70), rng.randint(2, 5), rng.randint(20, 60), rng.randint(2, 4)
    q = (f"{name} drives at {s1} miles per hour for {h1} hours, then at {s2} miles per hour for "
         f"{h2} more hours. How many miles does {she} drive in total?")
    d1, d2 = s1 * h1, s2 * h2
    steps = [f"In the first part {she} drives {calc(f'{s1}*{h1}')} miles.",
             f"In the second part {she} drives {calc(f'{s2}*{h2}')} miles.",
             f"In total {she} drives {calc(f'{d1}+{d2}')} miles."]
    return q, steps, {"s1": s1, "h1": h1, "s2": s2, "h2": h2}


def rate_work(rng: random.Random):
    name, she, _ = _person(rng)
    r, m = rng.randint(20, 80), rng.randint(5, 30)
    k = rng.randint(1, m - 1)
    w = r * m
    q = (f"{name} types {r} words per minute. {she.capitalize()} has to type a report of {w} words "
         f"and has already typed for {k} minutes. How many more minutes does {she} need?")
    typed = r * k
    steps = [f"{she.capitalize()} has typed {calc(f'{r}*{k}')} words.",
             f"That leaves {calc(f'{w}-{typed}')} words.",
             f"At {r} words per minute that takes {calc(f'{w - typed}/{r}')} minutes."]
    return q, steps, {"r": r, "w": w, "k": k}


def sharing(rng: random.Random):
    name, she, _ = _person(rng)
    per, boxes = rng.randint(3, 15), rng.randint(3, 12)
    given = rng.randint(1, boxes - 1)
    total = per * boxes
    thing = rng.choice(["cookies", "muffins", "crayons", "marbles", "stickers"])
    q = (f"{name} has {total} {thing} and packs them equally into {boxes} boxes. {she.capitalize()} "
         f"gives {given} of the boxes to friends. How many {thing} does {she} have left?")
    steps = [f"Each box holds {calc(f'{total}/{boxes}')} {thing}.",
             f"{she.capitalize()} keeps {calc(f'{boxes}-{given}')} boxes.",
             f"So {she} has {calc(f'{per}*{boxes - given}')} {thing} left."]
    return q, steps, {"total": total, "boxes": boxes, "given": given}


def percentages(rng: random.Random):
    if rng.random() < 0.5:
        total = 20 * rng.randint(2, 40)
        p = 5 * rng.randint(1, 10)
        q_ = 5 * rng.randint(1, 18 - p // 5)
        question = (f"A school has {total} students. {p}% of them take the bus and {q_}% walk. The "
                    f"rest ride bikes. How many students ride bikes?")
        bus, walk = total * p // 100, total * q_ // 100
        steps = [f"{calc(f'{total}*{p}/100')} students take the bus.",
                 f"{calc(f'{total}*{q_}/100')} students walk.",
                 f"That is {calc(f'{bus}+{walk}')} students.",
                 f"So {calc(f'{total}-{bus + walk}')} students ride bikes."]
        return question, steps, {"variant": "school", "total": total, "p": p, "q": q_}
    name, she, _ = _person(rng)
    price, p, n = 20 * rng.randint(1, 15), 5 * rng.randint(1, 12), rng.randint(2, 6)
    item = rng.choice(["jacket", "lamp", "backpack", "pair of shoes", "chair"])
    question = (f"A {item} costs ${price}. It is on sale for {p}% off. {name} buys {n} of them at "
                f"the sale price. How many dollars does {she} pay?")
    off = price * p // 100
    steps = [f"The discount is {calc(f'{price}*{p}/100')} dollars.",
             f"The sale price is {calc(f'{price}-{off}')} dollars.",
             f"{she.capitalize()} pays {calc(f'{n}*{price - off}')} dollars."]
    return question, steps, {"variant": "sale", "price": price, "p": p, "n": n}


def multi_step(rng: random.Random):
    """A chain of 2-4 operations: rows x trees x fruit, minus sold, minus given away."""
    name, she, _ = _person(rng)
    ops = rng.randint(2, 4)
    rows, per_row = rng.randint(2, 12), rng.randint(3, 15)
    fruit = rng.randint(5, 30) if ops >= 3 else 1
    total = rows * per_row * fruit
    sold = rng.randint(1, total // 2)
    given = rng.randint(1, max(1, (total - sold) // 3)) if ops == 4 else 0
    if ops == 2:
        question = (f"{name} plants {rows} rows of {per_row} tomato plants and then sells {sold} of "
                    f"the plants. How many plants does {she} have left?")
        steps = [f"{she.capitalize()} plants {calc(f'{rows}*{per_row}')} plants.",
                 f"After selling, {calc(f'{total}-{sold}')} plants are left."]
    else:
        trees = rows * per_row
        question = (f"An orchard owned by {name} has {rows} rows of {per_row} apple trees. Each tree "
                    f"gives {fruit} apples. {she.capitalize()} sells {sold} apples")
        question += f" and gives {given} apples to neighbours." if ops == 4 else "."
        question += " How many apples are left?"
        steps = [f"There are {calc(f'{rows}*{per_row}')} trees.",
                 f"They give {calc(f'{trees}*{fruit}')} apples.",
                 f"After selling, {calc(f'{total}-{sold}')} apples are left."]
        if ops == 4:
            steps.append(f"After giving some away, {calc(f'{total - sold}-{given}')} apples are left.")
    return question, steps, {"rows": rows, "per_row": per_row, "fruit": fruit, "sold": sold, "given": given}


def ages(rng: random.Random):
    name, she, her = _person(rng)
    variant = rng.choice(["times", "older", "past"])
    if variant == "times":
        k, child, y = rng.randint(2, 5), rng.randint(6, 15), rng.randint(2, 15)
        question = (f"{name} is {k} times as old as {her} nephew, who is {child} years old. How old "
                    f"will {name} be in {y} years?")
        steps = [f"{name} is {calc(f'{k}*{child}')} years old now.",
                 f"In {y} years {she} will be {calc(f'{k * child}+{y}')} years old."]
        return question, steps, {"variant": variant, "k": k, "child": child, "y": y}
    other, _ = rng.choice([p for p in PEOPLE if p[0] != name])
    if variant == "older":
        b, x, y = rng.randint(5, 40), rng.randint(1, 15), rng.randint(1, 10)
        question = (f"{name} is {x} years older than {other}. {other} is {b} years old. What will the "
                    f"sum of their ages be in {y} years?")
        a = b + x
        steps = [f"{name} is {calc(f'{b}+{x}')} years old.",
                 f"In {y} years {name} will be {calc(f'{a}+{y}')} and {other} will be {calc(f'{b}+{y}')}.",
                 f"The sum of their ages will be {calc(f'{a + y}+{b + y}')}."]
        return question, steps, {"variant": variant, "b": b, "x": x, "y": y}
    future, y, z = rng.randint(20, 70), rng.randint(1, 10), rng.randint(1, 15)
    question = f"In {y} years, {name} will be {future} years old. How old was {she} {z} years ago?"
    now = future - y
    steps = [f"{name} is {calc(f'{future}-{y}')} years old now.",
             f"{z} years ago {she} was {calc(f'{now}-{z}')} years old."]
    return question, steps, {"variant": variant, "future": future, "y": y, "z": z}


def areas(rng: random.Random):
    variant = rng.choice(["patio", "fence", "tiles"])
    length, width = rng.randint(6, 30), rng.randint(4, 20)
    if variant == "patio":
        side = rng.randint(2, min(length, width) - 1)
        question = (f"A rectangular garden is {length} meters long and {width} meters wide. A square "
                    f"patio with sides of {side} meters is built in it. How many square meters of "
                    f"the garden are left for plants?")
        steps = [f"The garden covers {calc(f'{length}*{width}')} square meters.",
                 f"The patio covers {calc(f'{side}*{side}')} square meters.",
                 f"That leaves {calc(f'{length * width}-{side * side}')} square meters."]
        return question, steps, {"variant": variant, "length": length, "width": width, "side": side}
    if variant == "fence":
        cost = rng.randint(3, 25)
        question = (f"A field is {length} meters long and {width} meters wide. Fencing costs ${cost} "
                    f"per meter. How many dollars does it cost to fence the whole field?")
        steps = [f"One length and one width make {calc(f'{length}+{width}')} meters.",
                 f"The perimeter is {calc(f'2*{length + width}')} meters.",
                 f"The fence costs {calc(f'{2 * (length + width)}*{cost}')} dollars."]
        return question, steps, {"variant": variant, "length": length, "width": width, "cost": cost}
    per_box = rng.choice([2, 3, 4, 5, 6, 8, 9, 10, 12])
    while (length * width) % per_box:
        length += 1
    question = (f"A floor is {length} meters by {width} meters. One box of tiles covers {per_box} "
                f"square meters. How many boxes are needed to cover the floor exactly?")
    steps = [f"The floor is {calc(f'{length}*{width}')} square meters.",
             f"That needs {calc(f'{length * width}/{per_box}')} boxes."]
    return question, steps, {"variant": variant, "length": length, "width": width, "per_box": per_box}


def savings(rng: random.Random):
    name, she, _ = _person(rng)
    weekly, weeks, have = rng.randint(5, 40), rng.randint(2, 20), rng.randint(0, 100)
    price = have + weekly * weeks
    good = rng.choice(GOODS)
    question = (f"{name} wants to buy a {good} that costs ${price}. {she.capitalize()} has ${have} "
                f"and saves ${weekly} every week. How many weeks will it take {name} to have enough?")
    steps = [f"{she.capitalize()} still needs {calc(f'{price}-{have}')} dollars.",
             f"At {weekly} dollars a week that takes {calc(f'{price - have}/{weekly}')} weeks."]
    return question, steps, {"price": price, "have": have, "weekly": weekly}


def schedule(rng: random.Random):
    n, minutes, pause = rng.randint(2, 6), rng.randint(40, 150), rng.randint(5, 30)
    question = (f"A film festival shows {n} films of {minutes} minutes each, with a break of {pause} "
                f"minutes between one film and the next. How many minutes does it last from the start "
                f"of the first film to the end of the last?")
    steps = [f"The films last {calc(f'{n}*{minutes}')} minutes.",
             f"There are {calc(f'{n}-1')} breaks, lasting {calc(f'{n - 1}*{pause}')} minutes.",
             f"In total that is {calc(f'{n * minutes}+{(n - 1) * pause}')} minutes."]
    return question, steps, {"n": n, "minutes": minutes, "pause": pause}


TEMPLATES: dict[str, Callable] = {f.__name__: f for f in (
    shopping_change, rate_distance, rate_work, sharing, percentages, multi_step, ages, areas,
    savings, schedule)}

# Closed forms, written independently of the worked steps above.
SOLVERS: dict[str, Callable[[dict], int]] = {
    "shopping_change": lambda p: p["bill"] - p["n1"] * p["p1"] - p["n2"] * p["p2"],
    "rate_distance": lambda p: p["s1"] * p["h1"] + p["s2"] * p["h2"],
    "rate_work": lambda p: (p["w"] - p["r"] * p["k"]) // p["r"],
    "sharing": lambda p: p["total"] // p["boxes"] * (p["boxes"] - p["given"]),
    "percentages": lambda p: (p["total"] * (100 - p["p"] - p["q"]) // 100 if p["variant"] == "school"
                              else p["n"] * p["price"] * (100 - p["p"]) // 100),
    "multi_step": lambda p: p["rows"] * p["per_row"] * p["fruit"] - p["sold"] - p["given"],
    "ages": lambda p: {"times": lambda: p["k"] * p["child"] + p["y"],
                       "older": lambda: 2 * p["b"] + p["x"] + 2 * p["y"],
                       "past": lambda: p["future"] - p["y"] - p["z"]}[p["variant"]](),
    "areas": lambda p: {"patio": lambda: p["length"] * p["width"] - p["side"] ** 2,
                        "fence": lambda: 2 * (p["length"] + p["width"]) * p["cost"],
                        "tiles": lambda: p["length"] * p["width"] // p["per_box"]}[p["variant"]](),
    "savings": lambda p: (p["price"] - p["have"]) // p["weekly"],
    "schedule": lambda p: p["n"] * p["minutes"] + (p["n"] - 1) * p["pause"],
}

ANNOTATION = re.compile(r"<<([^=<>]+)=([^<>]+)>>")


def make(split: str, index: int) -> dict:
    """One problem from the seed `split:index`; templates take turns so that each is ~10%."""
    names = sorted(TEMPLATES)
    template = names[index % len(names)]
    rng = random.Random(f"{NAME}:{split}:{index}")
    question, steps, params = TEMPLATES[template](rng)
    final = int(ANNOTATION.findall(steps[-1])[-1][1])
    assert final == SOLVERS[template](params), (template, params)
    answer = "\n".join(steps) + f"\n#### {final}"
    return {"question": question, "answer": answer, "final": final, "template": template, "params": params}


def build() -> dict[str, list[dict]]:
    """Test first, then train skipping any question already used (disjoint by question text)."""
    used: set[str] = set()
    splits: dict[str, list[dict]] = {}
    for split in ("test", "train"):
        rows, index = [], 0
        while len(rows) < SIZES[split]:
            row = make(split, index)
            index += 1
            if row["question"] not in used:
                used.add(row["question"])
                rows.append(row)
        splits[split] = rows
    return splits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=DATASETS_DIR / NAME)
    args = parser.parse_args()
    for split, rows in build().items():
        print(split, write_jsonl(args.out / f"{split}.jsonl", rows))


if __name__ == "__main__":
    main()
