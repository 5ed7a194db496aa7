// BuddyAllocator: the block allocator behind every LMEM and SMEM Region, after
// Linux's drm_buddy (drivers/gpu/drm/drm_buddy.c).
//
// A region of `size` bytes is managed in chunks of `chunk_size` bytes (a power
// of two, at least 4 KiB). Every block the allocator hands out or keeps free is
// `chunk_size << order` bytes long and naturally aligned: its offset is a
// multiple of its size. A region whose size is not a power-of-two multiple of
// the chunk becomes several roots, largest first (12 GiB = an 8 GiB root at 0
// and a 4 GiB root at 8 GiB); blocks never span two roots.
//
// Allocation splits free blocks in halves ("buddies") until it has a block of
// the order it wants, and returns a list of blocks whose sizes add up to the
// request rounded up to a chunk (12 KiB -> 8 KiB + 4 KiB). The blocks are not
// necessarily adjacent unless the request asks for `contiguous`. Freeing a
// block merges it with its buddy whenever the buddy is free too, repeatedly, so
// once everything is freed the region is its roots again.
//
// A request may be restricted to an address range [range_start, range_end):
// every block returned then lies inside it. The Region uses this to place
// objects that need CPU access inside the CPU-visible aperture [0, aperture).
//
// Ownership: blocks returned by Allocate belong to the caller until handed back
// to Free, in any grouping and order. The allocator keeps no pointer into
// caller memory; a Block is a plain value.
//
// Cost (n = chunks in the region): Allocate is O(log n) per block returned
// (plus at most one failed O(log n) search per order when memory is short),
// range-restricted or not: free lists per order with O(1) removal serve
// unrestricted requests, and a range-restricted one takes a free-list head
// that already lies inside the range or else searches the tree, pruned by the
// largest free order cached for each subtree. Free is an expected-O(1) lookup
// in a map of allocated blocks plus O(log n) merging per block. Metadata is
// created lazily as blocks split (32 bytes per tree node, recycled when
// buddies merge, plus a map entry per allocated block), so an empty 16 GiB
// region costs a few hundred bytes, not one entry per chunk; the node pool
// keeps its high-water mark (at most 2 nodes per chunk when fully split).
#ifndef GPUMIG_CORE_MEM_BUDDY_ALLOCATOR_H_
#define GPUMIG_CORE_MEM_BUDDY_ALLOCATOR_H_

#include <cstdint>
#include <memory>
#include <ostream>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace gpumig {

// A run of memory inside a region: offset and size in bytes; size is
// chunk_size << order, and offset is a multiple of size.
struct Block {
  uint64_t offset = 0;
  uint64_t size = 0;

  friend bool operator==(const Block& a, const Block& b) {
    return a.offset == b.offset && a.size == b.size;
  }
  friend bool operator!=(const Block& a, const Block& b) { return !(a == b); }
};

std::ostream& operator<<(std::ostream& os, const Block& block);

// Binary buddy allocator over one region.
//
// Thread-compatible, NOT internally synchronised: const methods may run
// concurrently with each other, but any call concurrent with a non-const call
// (Allocate, Free) is a data race. The owning Region serialises access under
// its own lock.
//
// Invariants (checked by CheckInvariantsForTest):
//  - every block, free or allocated, is aligned to its size and lies inside
//    one root;
//  - no two free buddies co-exist: freeing merges them at once;
//  - the per-order free lists hold exactly the free blocks of that order;
//  - free_bytes() is the sum of the free blocks, and allocated bytes plus
//    free bytes equal size().
class BuddyAllocator {
 public:
  struct Request {
    // Bytes wanted; rounded up to a multiple of chunk_size.
    uint64_t size = 0;
    // Every returned block lies in [range_start, range_end). Both must be
    // multiples of chunk_size. range_end 0 means the region's size.
    uint64_t range_start = 0;
    uint64_t range_end = 0;
    // Return exactly one contiguous extent. As drm_buddy does, the size is
    // rounded up to a power of two, one naturally aligned free block of that
    // size is taken, and the tail beyond the rounded-to-chunk size is trimmed
    // and freed again; the extent comes back as one or more adjacent blocks in
    // ascending offset order (12 KiB -> 8 KiB at X, 4 KiB at X + 8 KiB).
    // drm_buddy's fallback of stitching a run from several free blocks when
    // no such block exists (__alloc_contig_try_harder, O(n)) is not done.
    bool contiguous = false;
  };

  // Creates an allocator for a region of `size` bytes in chunks of
  // `chunk_size` bytes. A size that is not a multiple of chunk_size is
  // rounded down (drm_buddy does the same); size() reports the managed size.
  //
  // INVALID_ARGUMENT: size 0; chunk_size not a power of two or below 4096;
  //   size < chunk_size; 2^31 or more chunks (the tree indexes nodes with 32
  //   bits; use a larger chunk).
  static absl::StatusOr<std::unique_ptr<BuddyAllocator>> Create(
      uint64_t size, uint64_t chunk_size = 4096);

  BuddyAllocator(const BuddyAllocator&) = delete;
  BuddyAllocator& operator=(const BuddyAllocator&) = delete;
  ~BuddyAllocator();

  // Allocates blocks covering exactly request.size rounded up to chunk_size.
  // Without `contiguous`, the blocks are the largest that fit, in decreasing
  // order of size (falling back to smaller ones when memory is fragmented), so
  // the list may be long when the free space is fragmented. Blocks are taken
  // lowest order first (best fit) from the free lists; within a range
  // restriction, the lowest-addressed fitting block is used when no free-list
  // head already lies inside the range.
  //
  // INVALID_ARGUMENT: size 0; size larger than the region; range_start or
  //   range_end not a multiple of chunk_size; range_end > size();
  //   range_start >= range_end; the rounded size larger than the range; for
  //   `contiguous`, no naturally aligned block of the rounded power-of-two
  //   size fits inside the range and a root even when the region is empty.
  //   These can never succeed; retrying or evicting will not help.
  // RESOURCE_EXHAUSTED: not enough free space (in the range, or in one
  //   suitable block for `contiguous`) right now. Nothing changes: blocks
  //   split or taken for this request are merged back before returning.
  absl::StatusOr<std::vector<Block>> Allocate(const Request& request);

  // Returns blocks obtained from Allocate: any subset of them, in any order,
  // across any number of calls. All or nothing: the blocks are validated
  // first, and nothing is freed unless all of them are valid.
  //
  // INVALID_ARGUMENT: some block is not a currently allocated block exactly as
  //   Allocate returned it (never allocated, already freed, a different size,
  //   or listed twice). This is a caller bug; the allocator stays consistent.
  absl::Status Free(const std::vector<Block>& blocks);

  // Managed region size in bytes (the constructor's size rounded down to a
  // chunk).
  uint64_t size() const { return size_; }
  uint64_t chunk_size() const { return chunk_size_; }
  // Total bytes in free blocks. O(1).
  uint64_t free_bytes() const { return free_bytes_; }
  // Free bytes inside [start, end); partial blocks count by their overlap.
  // O(number of tree nodes overlapping the range): for statistics and tests.
  uint64_t free_bytes_in_range(uint64_t start, uint64_t end) const;
  // Size of the largest free block, 0 when nothing is free. O(1).
  uint64_t largest_free_block() const;
  // Size of the largest root: what largest_free_block() returns once
  // everything is free.
  uint64_t largest_root() const;

  // Walks the whole tree and checks the invariants listed in the class
  // comment plus the free lists' links, each node's cached subtree maximum and
  // metadata accounting. O(number of tree nodes).
  //
  // INTERNAL: describes the first violation found.
  absl::Status CheckInvariantsForTest() const;

 private:
  // Index of a Node in nodes_.
  using NodeId = uint32_t;
  static constexpr NodeId kNone = 0xFFFFFFFFu;

  enum class State : uint8_t { kFree, kAllocated, kSplit, kUnused };

  // One tree node: a block that is free, allocated or split in two children.
  // The children of a split node are a pair at ids (c, c + 1), c even, so the
  // buddy of a non-root node is id ^ 1 and its side is id & 1. Roots occupy
  // ids [0, roots) and have no buddy.
  struct Node {
    uint64_t offset = 0;
    NodeId parent = kNone;
    NodeId children = kNone;  // left child when kSplit, else kNone
    NodeId prev = kNone;      // free list links when kFree; the pool's free
    NodeId next = kNone;      // pair list reuses `next` when kUnused
    uint8_t order = 0;
    State state = State::kFree;
    // When kSplit: the largest order of a free block under each child, -1 if
    // none. Lets a range-restricted search skip subtrees with nothing big
    // enough; kept in the parent so that updating it up the tree touches one
    // node per level.
    int8_t child_max[2] = {-1, -1};
    // Set while Free validates its argument, to catch duplicates.
    bool freeing = false;
  };
  static_assert(sizeof(Node) == 32, "keep Node small");

  // Largest order of a free block in n's subtree, -1 if none.
  static int MaxFree(const Node& n) {
    switch (n.state) {
      case State::kFree:
        return n.order;
      case State::kSplit:
        return n.child_max[0] > n.child_max[1] ? n.child_max[0]
                                               : n.child_max[1];
      default:
        return -1;
    }
  }

  BuddyAllocator(uint64_t size, uint64_t chunk_size);

  uint64_t BlockSize(int order) const { return chunk_size_ << order; }

  // The hot paths take `nodes` = nodes_.data(); only ReservePairs grows
  // nodes_ (invalidating it).

  // Free lists, one per order, doubly linked through Node::prev/next.
  void ListPush(Node* nodes, NodeId id);
  void ListRemove(Node* nodes, NodeId id);

  // Node pool: pairs of children, recycled through a free pair list (merging
  // returns a pair to it). ReservePairs makes sure `pairs` pairs are
  // available; nothing else grows nodes_.
  void ReservePairs(uint64_t pairs);

  // Splits unlisted node `id` in two free, unlisted children and returns the
  // left one. Marks `id` kSplit with both child maxima order - 1. Needs a
  // reserved pair.
  NodeId Split(Node* nodes, NodeId id);

  // After MaxFree(nodes[id]) changed: updates the ancestors' child maxima,
  // stopping where a node's own maximum does not change.
  void PropagateMaxFree(Node* nodes, NodeId id);

  // Smallest-order free block of order >= `order`, kNone if none.
  NodeId FindFree(int order) const;
  // A free block of order >= `order` containing a naturally aligned block of
  // `order` inside [start, end); kNone if none.
  NodeId FindFreeInRange(int order, uint64_t start, uint64_t end) const;
  bool HasFitInRange(const Node& n, int order, uint64_t start,
                     uint64_t end) const;

  // Takes free block `id` off its list, splits it down to `order` towards the
  // lowest naturally aligned position >= `start`, marks that block allocated
  // and returns it.
  NodeId AllocateFrom(NodeId id, int order, uint64_t start);
  // Shrinks allocated block `top` to its first `bytes` (a chunk multiple
  // below its size): appends the allocated pieces to `out` in ascending
  // offset order and frees the tail.
  void Trim(NodeId top, uint64_t bytes, std::vector<NodeId>* out);

  // Marks allocated node `id` free and merges it with free buddies. The
  // caller removes it from allocated_.
  void FreeNode(NodeId id);

  absl::Status CheckSubtree(NodeId id, uint64_t* free_sum,
                            uint64_t* allocated_sum,
                            std::vector<uint64_t>* free_count_by_order,
                            std::vector<bool>* in_tree,
                            uint64_t* allocated_count) const;

  // Constant after construction.
  const uint64_t size_;
  const uint64_t chunk_size_;
  int chunk_shift_ = 0;
  int max_order_ = 0;  // order of the largest root
  NodeId num_roots_ = 0;

  std::vector<Node> nodes_;
  NodeId free_pairs_ = kNone;  // head of recycled pairs, linked via next
  uint64_t num_free_pairs_ = 0;
  NodeId free_lists_[64];         // head per order
  uint64_t nonempty_orders_ = 0;  // bit k set iff free_lists_[k] non-empty
  uint64_t free_bytes_ = 0;
  // Offset -> node of every allocated block: Free's lookup and validation.
  absl::flat_hash_map<uint64_t, NodeId> allocated_;
};

}  // namespace gpumig

#endif  // GPUMIG_CORE_MEM_BUDDY_ALLOCATOR_H_
