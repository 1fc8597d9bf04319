"""Where a process spends its time: summaries of py-spy's collapsed stacks (pure).

``py-spy record --format raw`` writes one line per distinct stack, ``frame;frame;… count``,
outermost frame first, each frame ``function (file:line)``. A function's *inclusive* share is
the fraction of samples with it anywhere on the stack (counted once per sample, recursion
or not); its *self* share, the fraction with it innermost.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass, field

_LINE = re.compile(r":\d+\)$")


def frame_name(frame: str) -> str:
    """A frame without its line number: ``dumps (json/__init__.py)``."""
    return _LINE.sub(")", frame.strip())


@dataclass
class Profile:
    """Sample counts of one process."""

    samples: int = 0
    inclusive: Counter[str] = field(default_factory=Counter)
    own: Counter[str] = field(default_factory=Counter)
    stacks: Counter[tuple[str, ...]] = field(default_factory=Counter)

    def share(self, function: str, *, inclusive: bool = True) -> float:
        """Fraction of the samples spent in a function (or, with ``inclusive``, below it)."""
        counts = self.inclusive if inclusive else self.own
        return counts[function] / self.samples if self.samples else 0.0

    def matching(self, *patterns: str) -> float:
        """Fraction of the samples whose stack has frames matching ``patterns`` in a row.

        One pattern: any frame matches. Several: consecutive frames, caller first, so
        ``("handle_readings ", "model_validate_json ")`` is JSON loaded by ``handle_readings``
        itself, not by a function it calls.
        """
        regexes = [re.compile(p) for p in patterns]
        width = len(regexes)

        def hit(stack: tuple[str, ...]) -> bool:
            return any(
                all(rx.search(stack[i + j]) for j, rx in enumerate(regexes))
                for i in range(len(stack) - width + 1)
            )

        found = sum(n for stack, n in self.stacks.items() if hit(stack))
        return found / self.samples if self.samples else 0.0

    def by_package(self) -> list[tuple[str, float]]:
        """Self shares grouped by the top folder of the innermost frame's file, largest first.

        ``pydantic/main.py`` counts as ``pydantic``, ``streams/app.py`` as ``streams``; a
        standard-library module at the top level (``copy.py``) as itself.
        """
        groups: Counter[str] = Counter()
        for stack, n in self.stacks.items():
            where = stack[-1][stack[-1].rfind("(") + 1 : -1]
            groups[where.split("/", 1)[0]] += n
        return [(name, n / self.samples) for name, n in groups.most_common()]

    def top(
        self, n: int, *, inclusive: bool = True, within: tuple[str, ...] = ()
    ) -> list[tuple[str, float]]:
        """The ``n`` functions with the largest share (only files under ``within``, if given)."""
        counts = self.inclusive if inclusive else self.own
        ranked = (
            (name, count)
            for name, count in counts.most_common()
            if not within or name[name.rfind("(") + 1 :].startswith(within)
        )
        return [(name, count / self.samples) for name, count in itertools.islice(ranked, n)]


def parse_collapsed(text: str) -> Profile:
    """Summarise collapsed stacks (one ``stack count`` per line)."""
    profile = Profile()
    for line in text.splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count = int(count_text)
        stack = tuple(frame_name(f) for f in stack_text.split(";") if f)
        if not stack:
            continue
        profile.samples += count
        profile.stacks[stack] += count
        for name in set(stack):
            profile.inclusive[name] += count
        profile.own[stack[-1]] += count
    return profile
