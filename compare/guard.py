"""One step of the run that must not cost the others: a claim, a report section, a chart, a
scenario. Its exception becomes one line in the run's failures and the step's fallback; the
report is written whatever a step raised."""

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def one_line(error: BaseException) -> str:
    """The exception's type and the first line of its text."""
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


def guarded(what: str, step: Callable[[], T], failures: list[str], fallback: Callable[[BaseException], T]) -> T:
    """step(), or fallback(error) with "<what>: <one line>" added to `failures` when it raises.
    Ctrl-C (KeyboardInterrupt) and exits still stop the run: they are not Exceptions."""
    try:
        return step()
    except Exception as error:  # noqa: BLE001 - one failed step must not lose the report
        failures.append(f"{what}: {one_line(error)}")
        return fallback(error)
