"""Memory isolation on every model, through the fault routes /leak (memory disclosure) and
/corrupt (heap corruption): what one compromised handler reads of other clients' requests, and
whose answers it spoils. The experiments are compare.isolation's, run here on a few clients;
which process served which client comes from the kernel's socket tables."""

import pytest

from compare import isolation
from harness import MODELS, Server, children, http_exchange

LIVE, CLOSED, CORRUPTION_CLIENTS = 8, 2, 8


def fault_server(model: str) -> Server:
    return Server(model, *isolation.server_flags(model))


@pytest.mark.parametrize("model", MODELS)
def test_leak_reads_the_canaries_of_its_own_process_only(model):
    with fault_server(model) as server:
        figures = isolation.disclosure_once(server.port, server.process.pid, LIVE, CLOSED)
        workers = children(server)
    assert figures["scan_stopped_early"] == 0
    live_seen = figures["live_own_process"] + figures["live_other_processes"]
    assert live_seen == LIVE  # every live connection was found in some server process
    # Another process's clients: never one canary, live or freed.
    assert figures["live_found_other_processes"] == 0
    assert figures["closed_found_other_processes"] == 0
    # Its own process's live clients: every one.
    assert figures["live_found_own_process"] == figures["live_own_process"]
    if model in ("threads", "pool"):
        assert figures["live_own_process"] == LIVE
    if model == "prefork":
        assert figures["live_own_process"] == 0  # each live client holds a child of its own
    if model == "hybrid":
        assert len(workers) >= isolation.HYBRID_WORKERS


@pytest.mark.parametrize("model", MODELS)
def test_corrupt_spoils_the_answers_of_its_own_process_only(model):
    with fault_server(model) as server:
        figures = isolation.corruption_once(server.port, server.process.pid, CORRUPTION_CLIENTS)
        assert server.alive()
    assert figures["process_survived"] == 1
    assert figures["clients_own_process"] + figures["clients_other_processes"] == CORRUPTION_CLIENTS
    assert figures["corrupted_own_process"] == figures["clients_own_process"]
    assert figures["corrupted_other_processes"] == 0
    assert figures["intact_other_processes"] == figures["clients_other_processes"]
    if model in ("threads", "pool"):
        assert figures["clients_own_process"] == CORRUPTION_CLIENTS
    if model == "prefork":
        assert figures["clients_own_process"] == 0


@pytest.mark.parametrize("model", MODELS)
def test_memory_routes_answer_404_without_fault_injection(model):
    with Server(model) as server:
        for target in (b"/leak?prefix=echolab0123456789", b"/corrupt"):
            reply = http_exchange(server.port, b"GET " + target + b" HTTP/1.1\r\nConnection: close\r\n\r\n")
            assert reply.startswith(b"HTTP/1.1 404") and b"fault injection is off" in reply, target
        reply = http_exchange(server.port, b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
        assert reply.endswith(isolation.GREETING)
