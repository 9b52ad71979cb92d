// Graph files: the versioned `.bnagraph` binary container and NumPy export of the graph ABI.
// Layout (all integers little-endian; full description in docs/formats.md):
//   magic "BNAGRAPH" | u32 version (=1) | u32 flags (=0) | i64 H | i64 T | i64 D | u64 meta_len |
//   meta JSON (meta_len bytes) | neigh_idx i32 [H,T,D] | edge_type u8 [H,T,D] | u32 CRC-32C
// The checksum is CRC-32C (Castagnoli) over every byte before it (magic included); chosen over
// FNV-1a because the SSE4.2 crc32 instruction checks multi-GB graphs at memory speed. Files are
// streamed through AtomicWriter, so a crash never leaves a partial graph file.
#pragma once

#include <cstdint>
#include <string>

#include "bna/graph.hpp"
#include "bna/status.hpp"

namespace bna::io {

inline constexpr uint32_t kGraphFileVersion = 1;

// Writes g (H, T, D >= 1 and arrays of H*T*D entries; errors otherwise) to `path` atomically.
Status save_graph(const std::string& path, const graph::GraphAbi& g);

// Parses a graph file held in memory. Never crashes on any input: truncation, wrong magic or version,
// dimensions that overflow or disagree with the size, bad checksum, bad JSON each give kCorrupt /
// kUnimplemented naming the value and what was expected. The arrays are NOT semantically validated
// here (use graph::validate).
Expected<graph::GraphAbi> parse_graph(const uint8_t* data, size_t n);
Expected<graph::GraphAbi> load_graph(const std::string& path);

// Writes `dir`/neigh_idx.npy (int32 [H,T,D]), `dir`/edge_type.npy (uint8 [H,T,D]) and `dir`/meta.json
// (the same JSON as the graph file's metadata block plus H, T, D), each atomically; creates `dir`.
Status export_graph_npy(const std::string& dir, const graph::GraphAbi& g);

// CRC-32C (reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF; "123456789" -> 0xE3069283).
// Incremental: crc32c(b, nb, crc32c(a, na)) == crc32c(a ++ b).
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);

}  // namespace bna::io
