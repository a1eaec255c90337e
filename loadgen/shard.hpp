// One process's share of a run described once (--shard I/N), so that N machines together
// load a server exactly as one run of the whole would.
//
// Connections are dealt round-robin: shard I takes the connections whose index in the whole
// run is I-1, I-1+N, I-1+2N... Each keeps its index, so its place in the ramp and its phase
// in the open-loop schedule are those it would have in the single run: the shards' ramps and
// sends interleave instead of bunching, and their shares differ by at most one connection.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace echolab::load {

struct Shard {
  std::size_t index = 1;  // counted from 1, as typed
  std::size_t count = 1;

  [[nodiscard]] bool whole() const { return count == 1; }
  // How many of `total` connections this shard runs.
  [[nodiscard]] std::size_t connections_of(std::size_t total) const;
  // The index in the whole run of this shard's `nth` connection (counted from 0).
  [[nodiscard]] std::size_t global_index(std::size_t nth) const;
  [[nodiscard]] std::string to_string() const;  // "2/3"
};

// "I/N" with 1 <= I <= N; throws std::invalid_argument saying what is wrong.
Shard parse_shard(std::string_view text);

}  // namespace echolab::load
