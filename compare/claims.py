"""The article's claims beside what this machine measured. Every verdict is computed from the
figures; none is assumed. "holds" means the measured value falls in the article's range,
"does not hold" that it falls outside (the text says which way), "partly" that one half of a
two-part claim holds or that it holds only under a condition the text names."""

import math
from dataclasses import asdict, dataclass, field

from .figures import Difference, Recorder
from .guard import guarded, one_line
from .probes import COMMUNICATION_PAIRS, COMMUNICATION_PLACEMENTS, rmap_counts
from .scenarios import MODELS
from .slow_clients import rate_difference
from .servers import EVENT_LOOP_MODELS

HOLDS, DOES_NOT_HOLD, PARTLY, NOT_MEASURED = "holds", "does not hold", "partly", "not measured"
ARTICLE_CONNECTIONS = 10_000  # the article's interview scenario
# Where the verdict turns on whether a difference is beyond the noise, one run cannot give it.
ONE_RUN = ("one run: whether the difference is beyond the noise is decided by the spread of the runs, "
           "and one run has none (the full run makes three)")


@dataclass
class Claim:
    key: str
    claim: str
    measured: str
    verdict: str
    why: str
    # Each process-minus-thread difference behind the claim (figures.difference): median, the
    # spread low-high, and whether the spread covers zero.
    differences: dict[str, Difference | None] = field(default_factory=dict)

    def to_json(self) -> dict:
        return asdict(self)


def us(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value / 1000:.2f} ms"
    return f"{value:.1f} us" if value < 100 else f"{value:.0f} us"


def ratio_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}x"


def in_range(value: float, low: float, high: float) -> bool:
    return low <= value <= high


def side(value: float, low: float, high: float, below: str, above: str) -> str:
    return below if value < low else above


class Figures:
    """Medians from the recorder, by short names."""

    def __init__(self, recorder: Recorder):
        self.recorder = recorder

    def probe(self, probe: str, name: str) -> float | None:
        return self.recorder.median("probe", (probe,), "machine", name)

    def scenario(self, scenario: str, model: str, name: str) -> float | None:
        rows = self.recorder.rows(scenario)
        return self.recorder.median(scenario, rows[0], model, name) if rows else None

    def probe_difference(self, probe: str, name: str, render) -> Difference | None:
        return self.recorder.difference("probe", (probe,), "machine", name, render)

    def probe_runs(self, probe: str, name: str) -> list[float | None]:
        """The figure of each run, in run order (None where a run lacked it)."""
        return [run.get(name) for run in self.recorder.runs("probe", (probe,), "machine")]

    def probe_ratio_runs(self, probe: str, numerator: str, denominator: str) -> list[float]:
        return [n / d for n, d in zip(self.probe_runs(probe, numerator), self.probe_runs(probe, denominator))
                if n is not None and d]


def disagreement(runs: list[float | None], low: float, high: float, render) -> str:
    """A note when the runs fall on different sides of the article's range: the median decides
    the verdict, and the reader should know the runs did not agree."""
    values = [v for v in runs if v is not None]
    zones = {(v >= low) + (v > high) for v in values}
    if len(zones) < 2:
        return ""
    return f" (the runs disagree: {render(min(values))} to {render(max(values))})"


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator is not None and denominator else None


def process_creation(f: Figures) -> Claim:
    fork, fork_exec = f.probe("spawn", "fork_p50_us"), f.probe("spawn", "fork_exec_p50_us")
    large_fork, large_rss = f.probe("spawn", "large_parent_fork_p50_us"), f.probe("spawn", "large_parent_parent_rss_kib")
    claim = "Process creation takes 1-10 ms"
    if fork is None:
        return Claim("process_creation", claim, "-", NOT_MEASURED, "the spawn probe produced no figure")
    measured = (f"fork {us(fork)} (p99 {us(f.probe('spawn', 'fork_p99_us'))}), fork+exec {us(fork_exec)}, "
                f"posix_spawn {us(f.probe('spawn', 'posix_spawn_p50_us'))}")
    if large_fork is not None and large_rss:
        measured += f"; fork from a {large_rss / 1024:.0f} MiB parent {us(large_fork)}"
    noise = disagreement(f.probe_runs("spawn", "fork_p50_us"), 1000, 10000, us)
    if in_range(fork, 1000, 10000):
        return Claim("process_creation", claim, measured, HOLDS, "a bare fork() falls in the range" + noise)
    if fork < 1000:
        conditions = []
        if fork_exec is not None and in_range(fork_exec, 1000, 10000):
            conditions.append("with exec of a new program")
        if large_fork is not None and large_fork >= 1000:
            conditions.append("from a parent with much memory mapped, whose page tables fork() must copy "
                              f"({us(large_fork)})")
        if conditions:
            return Claim("process_creation", claim, measured, PARTLY,
                         "a bare fork() of a small process is below 1 ms; process creation reaches or passes "
                         "the range only " + " or ".join(conditions) + noise)
    direction = side(fork, 1000, 10000, "faster", "slower")
    return Claim("process_creation", claim, measured, DOES_NOT_HOLD,
                 f"process creation is {direction} here: fork() copies page tables, not pages "
                 "(copy-on-write), so it costs what the parent's page tables cost" + noise)


def thread_creation(f: Figures) -> Claim:
    thread = f.probe("spawn", "thread_p50_us")
    claim = "Thread creation takes 10-100 us"
    if thread is None:
        return Claim("thread_creation", claim, "-", NOT_MEASURED, "the spawn probe produced no figure")
    measured = f"{us(thread)} (p99 {us(f.probe('spawn', 'thread_p99_us'))}) until the new thread runs"
    noise = disagreement(f.probe_runs("spawn", "thread_p50_us"), 10, 100, us)
    if in_range(thread, 10, 100):
        return Claim("thread_creation", claim, measured, HOLDS, "within the range" + noise)
    direction = side(thread, 10, 100, "faster", "slower")
    return Claim("thread_creation", claim, measured, DOES_NOT_HOLD,
                 f"thread creation is {direction} than the range here (glibc reuses cached stacks; "
                 "clone() with a shared address space copies no page tables)" + noise)


def creation_ratio(f: Figures) -> Claim:
    fork, thread = f.probe("spawn", "fork_p50_us"), f.probe("spawn", "thread_p50_us")
    fork_exec = f.probe("spawn", "fork_exec_p50_us")
    claim = "Thread creation is 10-100x faster than process creation"
    ratio, exec_ratio = _ratio(fork, thread), _ratio(fork_exec, thread)
    if ratio is None:
        return Claim("creation_ratio", claim, "-", NOT_MEASURED, "the spawn probe produced no figure")
    large_ratio = _ratio(f.probe("spawn", "large_parent_fork_p50_us"), f.probe("spawn", "large_parent_thread_p50_us"))
    measured = f"fork/thread {ratio_text(ratio)}, fork+exec/thread {ratio_text(exec_ratio)}"
    if large_ratio is not None:
        rss = f.probe("spawn", "large_parent_parent_rss_kib")
        measured += f", fork/thread from a {rss / 1024:.0f} MiB parent {ratio_text(large_ratio)}" if rss else ""
    server_fork = f.scenario("churn", "prefork-recycle", "spawn_p50_us")
    server_thread = f.scenario("churn", "threads", "spawn_p50_us")
    if server_fork is not None and server_thread is not None:
        measured += f"; in the servers: fork until ready {us(server_fork)}, thread {us(server_thread)}"
    noise = disagreement(f.probe_ratio_runs("spawn", "fork_p50_us", "thread_p50_us"), 10, 100, ratio_text)
    if ratio < 1:
        return Claim("creation_ratio", claim, measured, DOES_NOT_HOLD,
                     "a process was created faster than a thread on this machine" + noise)
    if in_range(ratio, 10, 100):
        return Claim("creation_ratio", claim, measured, HOLDS, "fork() is 10-100x a thread's creation" + noise)
    variants = [r for r in (exec_ratio, large_ratio) if r is not None]
    if any(in_range(r, 10, 100) for r in variants) or (ratio < 10 and any(r > 100 for r in variants)):
        return Claim("creation_ratio", claim, measured, PARTLY,
                     f"a bare fork() of a small process is {ratio_text(ratio)} a thread; with exec, or "
                     "from a large parent whose page tables fork() must copy, the ratio grows "
                     f"to {ratio_text(max(variants))}: it depends on what \"creating a process\" includes" + noise)
    direction = "smaller" if ratio < 10 else "larger"
    return Claim("creation_ratio", claim, measured, DOES_NOT_HOLD, f"the ratio is {direction} here" + noise)


def two_halves(key: str, claim: str, measured: str, first: bool, second: bool, holds_why: str,
               table: str) -> Claim:
    """The verdict of a claim with two halves (processes contain it; threads share it): holds
    when both were observed, partly when one was."""
    if first and second:
        return Claim(key, claim, measured, HOLDS, holds_why)
    if first or second:
        return Claim(key, claim, measured, PARTLY, f"only one half of the claim was observed: see the {table} table")
    return Claim(key, claim, measured, DOES_NOT_HOLD, f"see the {table} table")


def crash_containment(f: Figures, clients: int | None) -> Claim:
    claim = ("A crash in one process leaves the others running; a crash in one thread kills the "
             "whole process")
    died = {m: f.scenario("crash", m, "process_died") for m in MODELS}
    lost = {m: f.scenario("crash", m, "connections_lost") for m in MODELS}
    if any(v is None for v in died.values()):
        return Claim("crash_containment", claim, "-", NOT_MEASURED, "the crash experiment did not run for every model")
    parts = []
    for model in MODELS:
        outcome = "process died" if died[model] >= 0.5 else "process lived"
        parts.append(f"{model}: {outcome}, {lost[model]:.0f} of {clients} connections lost")
    measured = "; ".join(parts)
    process_isolated = died["prefork"] < 0.5 and lost["prefork"] == 0
    threads_shared = all(died[m] >= 0.5 and lost[m] == clients for m in ("threads", "pool"))
    return two_halves("crash_containment", claim, measured, process_isolated, threads_shared,
                      "the SIGSEGV killed one prefork child and every thread of the other servers", "crash")


def switch_ratio(f: Figures) -> Claim:
    process, thread = f.probe("context-switch", "process_ns"), f.probe("context-switch", "thread_ns")
    claim = "Thread context switches are 2-5x faster than process switches"
    ratio = _ratio(process, thread)
    if ratio is None:
        return Claim("switch_ratio", claim, "-", NOT_MEASURED, "the context-switch probe produced no figure")
    touching = _ratio(f.probe("context-switch", "touching_process_ns"), f.probe("context-switch", "touching_thread_ns"))
    measured = (f"process {process:.0f} ns, thread {thread:.0f} ns per switch (pinned, pipe ping-pong): "
                f"{ratio_text(ratio)}")
    if touching is not None:
        measured += f"; with a working set touched on each side {ratio_text(touching)}"
    noise = disagreement(f.probe_ratio_runs("context-switch", "process_ns", "thread_ns"), 2, 5, ratio_text)
    if in_range(ratio, 2, 5):
        return Claim("switch_ratio", claim, measured, HOLDS, "within the range" + noise)
    if touching is not None and in_range(touching, 2, 5):
        return Claim("switch_ratio", claim, measured, PARTLY,
                     "only when each side refills a working set of its own after the switch")
    direction = "smaller" if ratio < 2 else "larger"
    return Claim("switch_ratio", claim, measured, DOES_NOT_HOLD,
                 f"the difference is {direction} here: most of a switch is the scheduler and the "
                 "pipe wake-up, which threads and processes pay alike" + noise)


def cycles(value: float) -> str:
    return f"{value:,.0f} cycles"


def tlb_flush(f: Figures, pcid: bool, meltdown: str | None) -> Claim:
    claim = "A process switch flushes the TLB, adding 1000-2000 CPU cycles"
    extra = f.probe_difference("context-switch", "extra_cycles", cycles)
    touching = f.probe_difference("context-switch", "touching_extra_cycles", cycles)
    if extra is None:
        return Claim("tlb_flush", claim, "-", NOT_MEASURED,
                     "the context-switch probe gave no cycle figure (no nominal clock known)")
    differences = {"extra_cycles": extra, "touching_extra_cycles": touching}
    pcid_text = "PCID present" if pcid else "no PCID"
    measured = f"process minus thread switch: {extra.text}"
    if touching is not None:
        measured += f"; with a touched working set: {touching.text}"
    measured += f"; {pcid_text}" + (f", Meltdown: {meltdown}" if meltdown else "")
    pcid_why = ("with PCID the TLB keeps entries tagged by address space, so a switch between "
                "processes need not flush it" if pcid else
                "without PCID every address-space switch flushes the TLB")
    verdict = lambda v, why: Claim("tlb_flush", claim, measured, v, why, differences)
    noise = disagreement(f.probe_runs("context-switch", "extra_cycles"), 1000, 2000, cycles)
    if extra.within_noise is None:
        return verdict(NOT_MEASURED, ONE_RUN)
    touching_in_range = touching is not None and touching.within_noise is False and \
        in_range(touching.median, 1000, 2000)
    if extra.within_noise:
        if touching_in_range:
            return verdict(PARTLY, f"only once a working set must be refilled after the switch; {pcid_why}")
        return verdict(DOES_NOT_HOLD, "a process switch and a thread switch cost the same within the noise "
                                      f"of the samples: {pcid_why}")
    if in_range(extra.median, 1000, 2000):
        if pcid:
            # Two claims in one: the cost is in the range, but the flush is not what happens.
            return verdict(PARTLY, f"the extra cost is in the range, but {pcid_why}: what a process switch pays "
                                   "here is the address-space switch itself, not a flush" + noise)
        return verdict(HOLDS, f"within the range: {pcid_why}" + noise)
    if touching_in_range:
        return verdict(PARTLY, f"only once a working set must be refilled after the switch; {pcid_why}" + noise)
    if extra.median <= 0:
        return verdict(DOES_NOT_HOLD, f"a process switch cost no more than a thread switch here: {pcid_why}" + noise)
    direction = "fewer" if extra.median < 1000 else "more"
    return verdict(DOES_NOT_HOLD, f"{direction} cycles here: {pcid_why}" + noise)


def stack_size(f: Figures) -> Claim:
    claim = "Each thread stack consumes 1-8 MB"
    reserved = f.probe("thread-memory", "default_stack_virtual_kib")
    resident = f.probe("thread-memory", "default_stack_rss_kib")
    stack = f.probe("thread-memory", "default_stack_kib")
    if reserved is None or resident is None:
        return Claim("stack_size", claim, "-", NOT_MEASURED, "the thread-memory probe produced no figure")
    measured = (f"default stack {stack / 1024 if stack else 0:.0f} MiB: {reserved / 1024:.1f} MiB reserved "
                f"(virtual), {resident:.0f} KiB resident per idle thread")
    small_rss = f.probe("thread-memory", "small_stack_rss_kib")
    if small_rss is not None:
        measured += f"; {small_rss:.0f} KiB with a {f.probe('thread-memory', 'small_stack_kib') or 0:.0f} KiB stack"
    threads_server = f.scenario("hold", "threads", "rss_per_connection_kib")
    if threads_server is not None:
        measured += f"; the threads server: {threads_server:.0f} KiB RSS per held connection"
    if resident >= 1024 and in_range(resident / 1024, 1, 8):
        return Claim("stack_size", claim, measured, HOLDS, "resident memory per thread is in the range")
    if in_range(reserved / 1024, 1, 8.5):
        return Claim("stack_size", claim, measured, PARTLY,
                     "the stack reserves that much address space, but only the pages a thread touches "
                     "become resident memory")
    return Claim("stack_size", claim, measured, DOES_NOT_HOLD, "neither reserved nor resident size is in the range")


def ten_thousand(f: Figures, article: int, held_target: int, quick: bool) -> Claim:
    claim = (f"{article:,} connections with processes need {article:,} address spaces; threads share "
             "one with minimal overhead")
    processes = f.scenario("hold", "prefork", "processes")
    threads_processes = f.scenario("hold", "threads", "processes")
    held = f.scenario("hold", "prefork", "connections_held")
    pss = {m: f.scenario("hold", m, "pss_per_connection_kib") for m in MODELS}
    if processes is None or threads_processes is None or pss["prefork"] is None or pss["threads"] is None:
        return Claim("ten_thousand", claim, "-", NOT_MEASURED, "the hold did not complete for prefork and threads")
    measured = (f"at {held or 0:,.0f} connections: prefork {processes:,.0f} processes, "
                f"{pss['prefork']:.0f} KiB PSS per connection; threads {threads_processes:.0f} process, "
                f"{pss['threads']:.0f} KiB; pool {pss['pool'] if pss['pool'] is not None else 0:.1f} KiB")
    if f.scenario("hold", "prefork", "memory_partial"):
        measured += " (prefork's memory partial: its scrape hit the server's time budget)"
    scale_note = ""
    if held_target < article:
        scale_note = (f"; checked at {held_target:,} connections (the quick run)" if quick else
                      f"; checked at {held_target:,} connections only: the limits forbid {article:,}")
    address_spaces = processes >= 0.9 * (held or held_target) and threads_processes <= 1
    if not address_spaces:
        return Claim("ten_thousand", claim, measured, DOES_NOT_HOLD,
                     "prefork did not run one process per held connection" + scale_note)
    if pss["prefork"] >= 2 * max(pss["threads"], 1):
        # A full run the limits scaled down has not shown the article's number of connections.
        verdict = PARTLY if held_target < article and not quick else HOLDS
        why = (f"a connection costs {_ratio(pss['prefork'], max(pss['threads'], 1)):.1f}x more memory as a process "
               "(its own page tables, stack and dirtied copy-on-write pages) than as a thread")
        return Claim("ten_thousand", claim, measured, verdict, why + scale_note)
    return Claim("ten_thousand", claim, measured, PARTLY,
                 "one address space per connection, but copy-on-write keeps a forked child's cost "
                 "within 2x of a thread's here" + scale_note)


def ns_per_page(value: float) -> str:
    return f"{value / 1000:,.1f} us" if abs(value) >= 1000 else f"{value:,.0f} ns"


def mm_threads_text(f: Figures) -> str | None:
    cpu = {m: f.scenario("hold", m, "mm_threads_cpu_percent") for m in MODELS}
    if any(v is None for v in cpu.values()):
        return None
    return ("kernel mm threads (kdamond, kswapd, kcompactd, khugepaged) during the hold: " +
            ", ".join(f"{m} {v:.1f}%" for m, v in cpu.items()) + " of a CPU")


def address_spaces(f: Figures, article: int) -> Claim:
    claim = f"{article:,} connections need {article:,} address spaces"
    processes, held = f.scenario("hold", "prefork", "processes"), f.scenario("hold", "prefork", "connections_held")
    counts = rmap_counts(f.recorder.runs("probe", ("rmap",), "machine"))
    count = counts[-1] if counts else None
    walk = f.probe_difference("rmap", f"difference_ns_at_{count}", ns_per_page) if count else None
    if processes is None and walk is None:
        return Claim("address_spaces", claim, "-", NOT_MEASURED, "neither the hold nor the rmap probe produced figures")
    parts = []
    if held is not None and processes is not None:
        parts.append(f"prefork held {held:,.0f} connections with {processes:,.0f} processes")
    if walk is not None:
        process_ns, thread_ns = (f.probe("rmap", f"{m}_ns_at_{count}") for m in ("process", "thread"))
        parts.append(f"reverse-map walk per page: {ns_per_page(process_ns)} at {count:,} processes, "
                     f"{ns_per_page(thread_ns)} at {count:,} threads (process minus thread: {walk.text})")
    mm = mm_threads_text(f)
    if mm:
        parts.append(mm)
    measured = "; ".join(parts)
    differences = {"rmap_process_minus_thread_ns_per_page": walk} if walk else {}
    verdict = lambda v, why: Claim("address_spaces", claim, measured, v, why, differences)
    one_each = processes is not None and processes >= 0.9 * (held or 1)
    if processes is not None and not one_each:
        return verdict(DOES_NOT_HOLD, "prefork did not run one process per held connection")
    if walk is None:
        return verdict(PARTLY, "one address space per connection; the rmap probe gave no walk figure")
    if walk.within_noise is None:
        return verdict(NOT_MEASURED, "one address space per connection; the walk's cost: " + ONE_RUN)
    if walk.within_noise or walk.median <= 0:
        return verdict(PARTLY, "one address space per connection, but the kernel's walk of a shared page cost no "
                               "more with processes than with threads within the noise")
    return verdict(HOLDS, "each address space holds its own mapping of every page the children share, and every "
                          "kernel walk of such a page (DAMON, kswapd, compaction, migration) visits all of them: "
                          f"at {count:,} processes one walk costs {ratio_text(_ratio(process_ns, thread_ns))} what it "
                          "costs for threads, which share one address space")


def _slow(f: Figures, attack: str, model: str, name: str) -> float | None:
    return f.recorder.median("slow_clients", (attack, "defended"), model, name)


def impaired(change: Difference) -> bool:
    """Normal clients were hurt: their rate during the attack fell below the before window's
    beyond the noise (slow_clients.rate_change)."""
    return change.within_noise is False and change.median < 0


# Normal clients were held up when their rate fell beyond the noise and by more than this share
# of the rate before the attack. The event loops pay a few per cent for accepting and timing out
# the attack's connections (the pool 7 % in a full run); the worker models lose most of their
# rate while every worker waits on a slow client (70 % and more).
HELD_UP_SHARE = 0.25


def held_up(change: Difference, before: float) -> bool:
    return impaired(change) and -change.median > HELD_UP_SHARE * before


def _slow_header_part(f: Figures, model: str) -> tuple[str, bool] | str:
    """(what the slow-headers attack cost `model`, whether its normal clients were held up), or
    why there is no figure."""
    before, during = _slow(f, "slow_headers", model, "before_rps"), _slow(f, "slow_headers", model, "during_rps")
    if before is None or during is None:
        return "the slow-clients experiment did not run for every model"
    change = rate_difference({name: _slow(f, "slow_headers", model, name) for name in
                              ("during_change_rps", "during_change_rps_low", "during_change_rps_high")}, "during")
    if change is None:
        return f"the slow-clients experiment gave {model} no change of rate with its noise band"
    held = _slow(f, "slow_headers", model, "attack_held_p50_ms")
    errors = _slow(f, "slow_headers", model, "during_errors")
    rss_added = _slow(f, "slow_headers", model, "rss_added_mib")
    attackers = _slow(f, "slow_headers", model, "attackers") or 1
    text = (f"{model}: normal clients {before:,.0f} -> {during:,.0f} req/s, change {change.text} "
            f"({errors or 0:,.0f} errors), a slow connection held {held or 0:,.0f} ms")
    if rss_added is not None:
        text += f", {rss_added * 1024 / attackers:,.1f} KiB RSS each"
    return text, held_up(change, before)


def slow_connection_cost(f: Figures) -> Claim:
    claim = ("What one slow connection costs: a worker for its whole timeout in prefork and threads, "
             "a socket and a buffer in the pool")
    parts, held_up_models = [], set()
    for model in MODELS:
        part = _slow_header_part(f, model)
        if isinstance(part, str):
            return Claim("slow_connection_cost", claim, "-", NOT_MEASURED, part)
        parts.append(part[0])
        if part[1]:
            held_up_models.add(model)
    measured = "; ".join(parts) + " (slow headers, defence on)"
    worker_models = {model for model in MODELS if model not in EVENT_LOOP_MODELS}
    workers_free = sorted(worker_models - held_up_models)
    loops_held = sorted(held_up_models - worker_models)
    share = f"{HELD_UP_SHARE:.0%}"
    if not workers_free and not loops_held:
        return Claim("slow_connection_cost", claim, measured, HOLDS,
                     "with more slow connections than workers, prefork and threads starved normal clients until "
                     "the header timeout freed a worker; the event loops (pool, hybrid) kept serving them (within "
                     f"{share} of their rate), each slow connection costing them only memory")
    findings = []
    if workers_free:
        findings.append(f"{' and '.join(workers_free)} kept serving normal clients (their rate fell by less than "
                        f"{share}, or within the noise)")
    if loops_held:
        findings.append(f"the event loop{'s' if len(loops_held) > 1 else ''} {' and '.join(loops_held)} lost "
                        f"more than {share} of the normal clients' rate")
    # Partly when one side of the claim held whole: every worker model held up, or every event loop serving.
    verdict = PARTLY if not workers_free or not loops_held else DOES_NOT_HOLD
    return Claim("slow_connection_cost", claim, measured, verdict, "; ".join(findings))


def binomial_share_bound(clients: int, workers: int) -> float:
    """The most connections one of `workers` event loops is expected to hold out of `clients`
    spread at random (the kernel hashes each connection to a listener): the mean and three
    standard deviations of the binomial."""
    share = 1 / workers
    return clients * share + 3 * math.sqrt(clients * share * (1 - share))


def hybrid_tradeoff(f: Figures, clients: int | None) -> Claim:
    claim = ("Worker processes that each run an event loop (nginx's model) buy the isolation of "
             "processes at the memory cost of an event loop")
    died, lost = f.scenario("crash", "hybrid", "process_died"), f.scenario("crash", "hybrid", "connections_lost")
    workers = f.scenario("crash", "hybrid", "workers")
    pss = {m: f.scenario("hold", m, "pss_per_connection_kib") for m in ("hybrid", "pool", "prefork")}
    if died is None or lost is None or not workers or not clients or pss["hybrid"] is None or pss["pool"] is None:
        return Claim("hybrid_tradeoff", claim, "-", NOT_MEASURED, "the crash or hold experiment did not run for hybrid")
    if round(workers) < 2:
        # One worker's share is every connection: losing them all would pass for isolation.
        return Claim("hybrid_tradeoff", claim, f"one crash with {clients} clients on 1 worker: {lost:.0f} lost",
                     NOT_MEASURED, "with one worker process (one per CPU, and this machine gives one) a crash "
                     "takes every connection whatever the isolation, so this experiment cannot tell; the blast "
                     "radius table shows 2 and 4 workers")
    measured = (f"one crash with {clients} clients on {workers:.0f} workers: "
                f"{'the server died' if died >= 0.5 else 'the server lived'}, {lost:.0f} connections lost "
                f"(the pool: all); PSS per held connection {pss['hybrid']:.1f} KiB against the pool's "
                f"{pss['pool']:.1f} KiB" + (f" and prefork's {pss['prefork']:.0f} KiB" if pss["prefork"] else ""))
    isolated = died < 0.5 and lost <= binomial_share_bound(clients, round(workers))
    memory_of_a_loop = pss["hybrid"] <= 1.1 * pss["pool"]
    if isolated and memory_of_a_loop:
        return Claim("hybrid_tradeoff", claim, measured, HOLDS,
                     "a crash cost only the dead worker's share of the connections, and a connection cost "
                     "within 10 % of the pool's memory")
    if isolated:
        return Claim("hybrid_tradeoff", claim, measured, PARTLY,
                     f"a crash cost only one worker's share, but a connection cost "
                     f"{ratio_text(_ratio(pss['hybrid'], pss['pool']))} the pool's memory (each worker's own heap and "
                     "libraries, spread over the connections held)")
    return Claim("hybrid_tradeoff", claim, measured, DOES_NOT_HOLD,
                 "a crash cost more than one worker's share of the connections: see the crash table")


# --- claims of the communication, thread-exhaustion and fork-descriptors probes ---

# The words the claim uses for each placement of the communication probe.
COMMUNICATION_PLACES = dict(zip(COMMUNICATION_PLACEMENTS, ("one CPU", "two CPUs", "unpinned"), strict=True))


def _communication_parts(f: Figures, placement: str, size: str) -> list[float | None]:
    return [f.probe("communication", f"{placement}_{size}_{pair}_us") for pair in COMMUNICATION_PAIRS]


def _thread_gaps(f: Figures) -> dict[str, Difference]:
    """Processes minus threads through shared memory (64 B), per placement measured: the
    median of each run's paired differences, with the spread of the runs."""
    gaps = {place: f.probe_difference("communication", f"{place}_small_process_minus_thread_us", us)
            for place in COMMUNICATION_PLACES}
    return {place: gap for place, gap in gaps.items() if gap is not None}


def _thread_finding(gaps: dict[str, Difference]) -> tuple[str, str]:
    """("faster", "same", "slower", "mixed" or "undecided"; where, in words) for the thread pair
    against the process pair, judged on every placement's paired difference."""
    decided = {place: gap for place, gap in gaps.items() if gap.within_noise is not None}
    if not decided:
        return "undecided", ""
    faster = [COMMUNICATION_PLACES[p] for p, gap in decided.items() if not gap.within_noise and gap.median > 0]
    slower = [COMMUNICATION_PLACES[p] for p, gap in decided.items() if not gap.within_noise and gap.median < 0]
    if faster and slower:
        return "mixed", f"threads were faster on {', '.join(faster)} and slower on {', '.join(slower)}"
    if faster:
        return "faster", ("in every placement" if len(faster) == len(decided) else f"on {', '.join(faster)}; "
                          "no difference elsewhere")
    return ("slower", ", ".join(slower)) if slower else ("same", "")


def communication(f: Figures) -> Claim:
    """Judged on the paired differences of every placement, with each pair's medians from one
    CPU. Unpinned, a sample runs where the scheduler puts the two sides (one CPU or two), so the
    medians of two pairs can come from different placements and contradict their own paired
    difference; on one CPU every hand-over is a context switch, and the figures are stable."""
    claim = "Threads give you shared memory and faster communication"
    place = "one_cpu" if None not in _communication_parts(f, "one_cpu", "small") else "unpinned"
    thread, shared, pipe, socket = _communication_parts(f, place, "small")
    if None in (thread, shared, pipe, socket):
        return Claim("communication", claim, "-", NOT_MEASURED, "the communication probe produced no figure")
    large = _communication_parts(f, place, "large")
    measured = (f"{f.probe('communication', 'small_bytes') or 0:.0f} B round trip on {COMMUNICATION_PLACES[place]}: "
                f"threads through shared memory {us(thread)}, processes through shared memory {us(shared)}, "
                f"a pipe {us(pipe)}, a Unix socket {us(socket)}")
    if None not in large:
        measured += f"; {f.probe('communication', 'large_bytes') or 0:,.0f} B: " + ", ".join(us(v) for v in large)
    gaps = _thread_gaps(f)
    if gaps:
        measured += "; processes minus threads through shared memory, paired sample by sample: " + ", ".join(
            f"{COMMUNICATION_PLACES[p]} {gap.text}" for p, gap in gaps.items())
    differences = {f"process_minus_thread_shared_memory_{p}": gap for p, gap in gaps.items()}
    verdict = lambda v, why: Claim("communication", claim, measured, v, why, differences)
    sizes = {"small": (shared, pipe, socket), "large": tuple(large[1:])}
    # Sharing is faster for a size when processes sharing a mapping beat both kernel paths by a fifth.
    faster_sizes = [name for name, (by_sharing, by_pipe, by_socket) in sizes.items()
                    if None not in (by_sharing, by_pipe, by_socket) and by_sharing * 1.2 < min(by_pipe, by_socket)]
    sharing_faster = bool(faster_sizes)
    sharing = ({2: "processes that share a mapping communicate faster than through a pipe or a socket",
                1: f"processes that share a mapping communicate faster than through a pipe or a socket for the "
                   f"{faster_sizes[0] if faster_sizes else ''} message only",
                0: "shared memory is not faster here than a pipe or a socket"}[len(faster_sizes)])
    finding, where = _thread_finding(gaps)
    if finding == "undecided":
        return verdict(PARTLY if sharing_faster else NOT_MEASURED,
                       f"{sharing}; whether the thread itself adds speed: {ONE_RUN}")
    if finding == "same":
        if sharing_faster:
            return verdict(PARTLY, f"{sharing}, and threads are no faster than processes sharing memory: it is "
                                   "the sharing, not the thread, that makes communication fast")
        return verdict(DOES_NOT_HOLD, f"{sharing}, and threads are no faster than processes sharing memory")
    if finding == "faster":
        faster = "threads are faster still" if sharing_faster else "threads are faster than processes sharing memory"
        return verdict(HOLDS if sharing_faster else PARTLY,
                       f"{sharing}; {faster}, {where} (one address space: no page-table switch on each hand-over)")
    if finding == "mixed":
        return verdict(PARTLY, f"{sharing}; {where}")
    return verdict(PARTLY if sharing_faster else DOES_NOT_HOLD,
                   f"{sharing}, but processes sharing a mapping were faster than threads here ({where})")


def _mib(kib: float) -> str:
    return f"{kib / 1024:,.0f} MiB" if kib < 1024 * 1024 else f"{kib / 1024 / 1024:,.1f} GiB"


def thread_exhaustion(f: Figures) -> Claim:
    claim = ("Each thread stack consumes 1-8 MB; excessive thread creation can exhaust memory before CPU "
             "becomes the bottleneck")
    threads, rss = f.probe("thread-exhaustion", "default_threads"), f.probe("thread-exhaustion", "default_rss_kib")
    if not threads or rss is None:
        return Claim("thread_exhaustion", claim, "-", NOT_MEASURED, "the thread-exhaustion probe produced no figure")
    notes = f.recorder.notes.get(("probe", ("thread-exhaustion",), "machine")) or ["-"]
    reserved = f.probe("thread-exhaustion", "default_virtual_kib") or 0
    kernel_stacks = max(f.probe("thread-exhaustion", "default_kernel_stack_kib_added") or 0, 0)
    idle_cpu = f.probe("thread-exhaustion", "default_hold_cpu_share") or 0
    available = f.probe("thread-exhaustion", "mem_available_kib") or 0
    headroom = f.probe("thread-exhaustion", "task_headroom")
    per_thread = (rss + kernel_stacks) / threads
    memory_would_hold = available / per_thread if per_thread else None
    measured = (f"{notes[0]}; with the default stack: {_mib(rss)} resident, {_mib(reserved)} reserved, "
                f"{_mib(kernel_stacks)} of kernel stacks ({per_thread:.0f} KiB per thread in all); "
                f"CPU {idle_cpu * 100:.1f}% while they idled")
    if memory_would_hold is not None:
        measured += f"; the {_mib(available)} available would hold about {memory_would_hold:,.0f} such threads"
    if headroom is not None:
        measured += f", the task limits {headroom:,.0f}"
    idle = idle_cpu < 0.05
    if f.probe("thread-exhaustion", "default_ended_by_memory"):
        return Claim("thread_exhaustion", claim, measured, HOLDS if idle else PARTLY,
                     "memory ran out first" + ("" if idle else ", but the idle threads cost CPU too"))
    if f.probe("thread-exhaustion", "default_ended_by_address_space"):
        return Claim("thread_exhaustion", claim, measured, PARTLY,
                     "the address space (RLIMIT_AS) ran out, not memory: reserved stacks, not resident ones")
    if memory_would_hold is not None and headroom is not None and memory_would_hold < headroom:
        return Claim("thread_exhaustion", claim, measured, PARTLY,
                     "memory would run out before the task limits (extrapolated from the threads made), "
                     "but a thread holds only the pages it touches, not its 1-8 MB stack")
    return Claim("thread_exhaustion", claim, measured, DOES_NOT_HOLD,
                 "a task limit (or the probe's cap) comes long before memory: an idle thread holds only the "
                 "pages it touches, not its reserved stack, and costs no CPU")


def fork_descriptors(f: Figures) -> Claim:
    claim = "fork() copies the parent's process: its cost grows with what the parent holds (here, open descriptors)"
    low, high = f.probe("fork-descriptors", "fewest_descriptors"), f.probe("fork-descriptors", "most_descriptors")
    extra = f.probe_difference("fork-descriptors", "extra_us", us)
    if low is None or high is None or extra is None:
        return Claim("fork_descriptors", claim, "-", NOT_MEASURED,
                     "the fork-descriptors probe reached fewer than two descriptor levels")
    low_us, high_us = (f.probe("fork-descriptors", f"fork_at_{n:.0f}_us") for n in (low, high))
    measured = (f"fork until the child runs: {us(low_us)} holding {low:,.0f} descriptors, {us(high_us)} holding "
                f"{high:,.0f}: {extra.text}")
    large = f.probe("spawn", "large_parent_fork_p50_us")
    if large is not None:
        measured += f"; from the spawn probe's large parent {us(large)}"
    verdict = lambda v, why: Claim("fork_descriptors", claim, measured, v, why, {"extra_us": extra})
    if extra.within_noise is None:
        return verdict(NOT_MEASURED, ONE_RUN)
    if extra.within_noise:
        return verdict(DOES_NOT_HOLD, f"{high:,.0f} descriptors cost fork nothing measurable: copying the "
                                      "descriptor table is small beside the rest of a fork")
    if extra.median > 0:
        per_thousand = extra.median / (high - low) * 1000
        return verdict(HOLDS, f"fork copies the descriptor table and takes a reference on every open file: "
                              f"about {us(per_thousand)} per 1,000 descriptors")
    return verdict(DOES_NOT_HOLD, "fork was no slower with more descriptors")

# --- end of the communication, thread-exhaustion and fork-descriptors claims ---


# -- memory isolation (compare/isolation.py) ----------------------------------------------------

def _isolation(f: Figures, scenario: str, model: str, name: str) -> float | None:
    return f.recorder.median(scenario, (), model, name)


def memory_disclosure(f: Figures) -> Claim:
    claim = ("No other process can read or write this memory directly; a malicious thread can read any "
             "memory in its process")
    fig = lambda model, name: _isolation(f, "disclosure", model, name)  # noqa: E731
    if any(fig(m, "live_found_other_processes") is None for m in MODELS):
        return Claim("memory_disclosure", claim, "-", NOT_MEASURED, "the disclosure experiment did not run for every model")
    read_across = {m: fig(m, "live_found_other_processes") + fig(m, "closed_found_other_processes")
                   for m in ("prefork", "hybrid")}
    shared = {m: (fig(m, "live_found_own_process"), fig(m, "live_own_process")) for m in ("threads", "pool")}
    measured = (f"canaries of other processes' clients read: prefork {read_across['prefork']:.0f}, hybrid "
                f"{read_across['hybrid']:.0f}; live canaries of its own process's clients: " +
                ", ".join(f"{m} {found:.0f} of {total:.0f}" for m, (found, total) in shared.items()))
    isolated = all(count == 0 for count in read_across.values())
    all_read = all(total > 0 and found == total for found, total in shared.values())
    return two_halves("memory_disclosure", claim, measured, isolated, all_read,
                      "one compromised handler read every live canary of its process, and none of another process",
                      "memory disclosure")


def heap_corruption(f: Figures) -> Claim:
    claim = "If one thread corrupts shared heap memory, every thread in that process sees the corruption"
    fig = lambda model, name: _isolation(f, "corruption", model, name)  # noqa: E731
    if any(fig(m, "clients_own_process") is None for m in MODELS):
        return Claim("heap_corruption", claim, "-", NOT_MEASURED, "the corruption experiment did not run for every model")
    measured = "; ".join(f"{m} {fig(m, 'corrupted_own_process'):.0f} of {fig(m, 'clients_own_process'):.0f} "
                         f"(other processes' {fig(m, 'corrupted_other_processes'):.0f} of "
                         f"{fig(m, 'clients_other_processes'):.0f})" for m in MODELS)
    every_own = all(fig(m, "corrupted_own_process") == fig(m, "clients_own_process") for m in MODELS)
    threaded_seen = all(fig(m, "clients_own_process") > 0 for m in ("threads", "pool"))
    contained = all(fig(m, "corrupted_other_processes") == 0 for m in MODELS)
    survived = all(fig(m, "process_survived") == 1 for m in MODELS)
    if every_own and threaded_seen and contained and survived:
        return Claim("heap_corruption", claim, measured, HOLDS,
                     "every connection of the corrupting process answered the corrupted bytes, no other "
                     "process's did, and no process died of it")
    return Claim("heap_corruption", claim, measured, DOES_NOT_HOLD, "see the heap corruption table")


def evaluate(recorder: Recorder, crash_clients: int, pcid: bool, meltdown: str | None,
             hold_connections: int, quick: bool, failures: list[str]) -> list[Claim]:
    """Every claim's verdict. A claim whose evaluation raises is "not measured", with the
    error, and listed in `failures`: the other claims and the report still come."""
    f = Figures(recorder)
    checks = {
        "process_creation": lambda: process_creation(f),
        "thread_creation": lambda: thread_creation(f),
        "creation_ratio": lambda: creation_ratio(f),
        "crash_containment": lambda: crash_containment(f, crash_clients),
        "switch_ratio": lambda: switch_ratio(f),
        "tlb_flush": lambda: tlb_flush(f, pcid, meltdown),
        "stack_size": lambda: stack_size(f),
        "ten_thousand": lambda: ten_thousand(f, ARTICLE_CONNECTIONS, hold_connections, quick),
        "address_spaces": lambda: address_spaces(f, ARTICLE_CONNECTIONS),
        "slow_connection_cost": lambda: slow_connection_cost(f),
        "hybrid_tradeoff": lambda: hybrid_tradeoff(f, crash_clients),
        # the communication, thread-exhaustion and fork-descriptors probes
        "communication": lambda: communication(f),
        "thread_exhaustion": lambda: thread_exhaustion(f),
        "fork_descriptors": lambda: fork_descriptors(f),
        "memory_disclosure": lambda: memory_disclosure(f),
        "heap_corruption": lambda: heap_corruption(f),
    }
    return [guarded(f"claim {key}", check, failures,
                    lambda error, key=key: Claim(key, key.replace("_", " "), "-", NOT_MEASURED,
                                                 f"the verdict could not be computed: {one_line(error)}"))
            for key, check in checks.items()]
