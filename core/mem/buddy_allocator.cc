#include "core/mem/buddy_allocator.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/attributes.h"
#include "absl/container/inlined_vector.h"
#include "absl/numeric/bits.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace gpumig {
namespace {

// Node ids are 32 bits; a fully split region of c chunks has 2c - roots nodes.
constexpr uint64_t kMaxChunks = uint64_t{1} << 31;

int FloorLog2(uint64_t x) { return 63 - absl::countl_zero(x); }
int CeilLog2(uint64_t x) { return x <= 1 ? 0 : FloorLog2(x - 1) + 1; }

std::string BlockString(const Block& block) {
  return absl::StrFormat("{offset=%#x, size=%#x}", block.offset, block.size);
}

}  // namespace

std::ostream& operator<<(std::ostream& os, const Block& block) {
  return os << BlockString(block);
}

absl::StatusOr<std::unique_ptr<BuddyAllocator>> BuddyAllocator::Create(
    uint64_t size, uint64_t chunk_size) {
  if (size == 0) {
    return absl::InvalidArgumentError("BuddyAllocator: region size is 0");
  }
  if (chunk_size < 4096 || !absl::has_single_bit(chunk_size)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "BuddyAllocator: chunk size %d is not a power of two >= 4096",
        chunk_size));
  }
  if (size < chunk_size) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "BuddyAllocator: region size %d < chunk size %d", size, chunk_size));
  }
  if (size / chunk_size >= kMaxChunks) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "BuddyAllocator: region size %d has 2^31 or more chunks of %d bytes; "
        "use a larger chunk",
        size, chunk_size));
  }
  return std::unique_ptr<BuddyAllocator>(new BuddyAllocator(size, chunk_size));
}

BuddyAllocator::BuddyAllocator(uint64_t size, uint64_t chunk_size)
    : size_(size & ~(chunk_size - 1)), chunk_size_(chunk_size) {
  chunk_shift_ = absl::countr_zero(chunk_size_);
  uint64_t chunks = size_ >> chunk_shift_;
  max_order_ = FloorLog2(chunks);
  std::fill(std::begin(free_lists_), std::end(free_lists_), kNone);
  // Roots: the binary decomposition of the chunk count, largest first. Each
  // root's offset is the sum of larger powers of two, so it is aligned to its
  // own size.
  uint64_t offset = 0;
  while (chunks != 0) {
    const int order = FloorLog2(chunks);
    Node root;
    root.offset = offset;
    root.order = static_cast<uint8_t>(order);
    root.state = State::kFree;
    nodes_.push_back(root);
    ListPush(nodes_.data(), static_cast<NodeId>(nodes_.size() - 1));
    offset += BlockSize(order);
    chunks -= uint64_t{1} << order;
  }
  num_roots_ = static_cast<NodeId>(nodes_.size());
  // Child pairs start at an even id so that a buddy is id ^ 1.
  if (nodes_.size() % 2 != 0) {
    Node pad;
    pad.state = State::kUnused;
    nodes_.push_back(pad);
  }
  free_bytes_ = size_;
}

BuddyAllocator::~BuddyAllocator() = default;

// The hot paths index a local `Node* nodes` rather than nodes_: stores to the
// one-byte fields may alias the vector's own pointer, which would make the
// compiler reload it after every store.

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void BuddyAllocator::ListPush(Node* nodes,
                                                                  NodeId id) {
  Node& n = nodes[id];
  const NodeId head = free_lists_[n.order];
  n.prev = kNone;
  n.next = head;
  if (head != kNone) {
    nodes[head].prev = id;
  } else {
    nonempty_orders_ |= uint64_t{1} << n.order;
  }
  free_lists_[n.order] = id;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void BuddyAllocator::ListRemove(Node* nodes,
                                                                    NodeId id) {
  const Node& n = nodes[id];
  if (n.prev != kNone) {
    nodes[n.prev].next = n.next;
  } else {
    free_lists_[n.order] = n.next;
    if (n.next == kNone) nonempty_orders_ &= ~(uint64_t{1} << n.order);
  }
  if (n.next != kNone) nodes[n.next].prev = n.prev;
}

void BuddyAllocator::ReservePairs(uint64_t pairs) {
  if (num_free_pairs_ >= pairs) return;
  // Cannot overflow NodeId: Create bounds the chunk count, and a tree over c
  // chunks never has more than 2c nodes.
  const uint64_t grow = pairs - num_free_pairs_;
  const NodeId first = static_cast<NodeId>(nodes_.size());
  nodes_.resize(nodes_.size() + 2 * grow);
  for (NodeId left = first + 2 * static_cast<NodeId>(grow); left != first;) {
    left -= 2;
    nodes_[left].state = nodes_[left + 1].state = State::kUnused;
    nodes_[left].next = free_pairs_;
    free_pairs_ = left;
  }
  num_free_pairs_ += grow;
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline BuddyAllocator::NodeId
BuddyAllocator::Split(Node* nodes, NodeId id) {
  // A pair from the pool has children == kNone and freeing == false already:
  // it was released only when both nodes were free leaves.
  const NodeId left = free_pairs_;
  free_pairs_ = nodes[left].next;
  --num_free_pairs_;
  Node& parent = nodes[id];
  const uint8_t order = parent.order - 1;
  Node& l = nodes[left];
  Node& r = nodes[left + 1];
  l.offset = parent.offset;
  r.offset = parent.offset + BlockSize(order);
  l.parent = r.parent = id;
  l.order = r.order = order;
  l.state = r.state = State::kFree;
  parent.state = State::kSplit;
  parent.children = left;
  parent.child_max[0] = parent.child_max[1] = static_cast<int8_t>(order);
  return left;
}

void BuddyAllocator::PropagateMaxFree(Node* nodes, NodeId id) {
  int value = MaxFree(nodes[id]);
  for (NodeId p = nodes[id].parent; p != kNone; id = p, p = nodes[p].parent) {
    Node& parent = nodes[p];
    int8_t& slot = parent.child_max[id & 1];
    if (slot == value) return;
    const int before = MaxFree(parent);
    slot = static_cast<int8_t>(value);
    value = MaxFree(parent);
    if (value == before) return;
  }
}

BuddyAllocator::NodeId BuddyAllocator::FindFree(int order) const {
  const uint64_t fits = nonempty_orders_ >> order;
  if (fits == 0) return kNone;
  return free_lists_[order + absl::countr_zero(fits)];
}

bool BuddyAllocator::HasFitInRange(const Node& n, int order, uint64_t start,
                                   uint64_t end) const {
  if (MaxFree(n) < order) return false;
  const uint64_t bs = BlockSize(order);
  const uint64_t lo = std::max(n.offset, start);
  const uint64_t hi = std::min(n.offset + BlockSize(n.order), end);
  if (lo >= hi || hi - lo < bs) return false;
  const uint64_t p = (lo + bs - 1) & ~(bs - 1);  // no overflow: lo + bs <= hi
  return hi - p >= bs;
}

BuddyAllocator::NodeId BuddyAllocator::FindFreeInRange(int order,
                                                       uint64_t start,
                                                       uint64_t end) const {
  const Node* const nodes = nodes_.data();
  // Common case: some free-list head already lies inside the range. Smallest
  // order first, as for an unrestricted request.
  for (uint64_t fits = nonempty_orders_ >> order << order; fits != 0;
       fits &= fits - 1) {
    const int j = absl::countr_zero(fits);
    const Node& head = nodes[free_lists_[j]];
    if (head.offset >= start && head.offset < end &&
        end - head.offset >= BlockSize(j)) {
      return free_lists_[j];
    }
  }
  // Otherwise the lowest-addressed fit. The child maxima prune every subtree
  // with nothing big enough; a subtree wholly inside the range that passes
  // the pruning holds a fit, so only the nodes straddling a range boundary
  // (at most two per level) can pass it and still fail: O(depth) visits.
  NodeId stack[2 * 64 + 2];
  for (NodeId root = 0; root < num_roots_; ++root) {
    int sp = 0;
    stack[sp++] = root;
    while (sp > 0) {
      const NodeId id = stack[--sp];
      const Node& n = nodes[id];
      if (!HasFitInRange(n, order, start, end)) continue;
      if (n.state == State::kFree) return id;
      stack[sp++] = n.children + 1;
      stack[sp++] = n.children;
    }
  }
  return kNone;
}

BuddyAllocator::NodeId BuddyAllocator::AllocateFrom(NodeId id, int order,
                                                    uint64_t start) {
  ReservePairs(nodes_[id].order - order);
  Node* const nodes = nodes_.data();
  ListRemove(nodes, id);
  const NodeId top = id;
  const uint64_t bs = BlockSize(order);
  const uint64_t target =
      std::max(nodes[id].offset, (start + bs - 1) & ~(bs - 1));
  // Split down to `order`: Split and ListPush by hand, with the pool and
  // free-list mask in locals (stores to one-byte Node fields could alias the
  // members, forcing a reload per level).
  const int top_order = nodes[id].order;
  NodeId pairs = free_pairs_;
  uint64_t nonempty = nonempty_orders_;
  uint64_t offset = nodes[id].offset;
  for (int o = top_order; o > order; --o) {
    const int child_order = o - 1;
    const uint64_t half = BlockSize(child_order);
    const NodeId left = pairs;
    Node& l = nodes[left];
    Node& r = nodes[left + 1];
    pairs = l.next;
    l.offset = offset;
    r.offset = offset + half;
    l.parent = r.parent = id;
    l.order = r.order = static_cast<uint8_t>(child_order);
    l.state = r.state = State::kFree;
    // We go on with the child holding `target`; it is split again (keeping a
    // free half of order o - 2) or, at the bottom, allocated. The other
    // child goes on its free list whole.
    const int side = target >= offset + half ? 1 : 0;
    const NodeId keep = left + side;
    const NodeId spare = keep ^ 1;
    Node& parent = nodes[id];
    parent.state = State::kSplit;
    parent.children = left;
    parent.child_max[side] = static_cast<int8_t>(o - 1 > order ? o - 2 : -1);
    parent.child_max[side ^ 1] = static_cast<int8_t>(child_order);
    const NodeId head = free_lists_[child_order];
    nodes[spare].prev = kNone;
    nodes[spare].next = head;
    if (head != kNone) {
      nodes[head].prev = spare;
    } else {
      nonempty |= uint64_t{1} << child_order;
    }
    free_lists_[child_order] = spare;
    offset += side ? half : 0;
    id = keep;
  }
  free_pairs_ = pairs;
  num_free_pairs_ -= top_order - order;
  nonempty_orders_ = nonempty;
  Node& n = nodes[id];
  n.state = State::kAllocated;
  allocated_.emplace(n.offset, id);
  free_bytes_ -= bs;
  PropagateMaxFree(nodes, top);
  return id;
}

void BuddyAllocator::Trim(NodeId top, uint64_t bytes,
                          std::vector<NodeId>* out) {
  // Give back the tail beyond `bytes`: split down one chain, keeping whole
  // left halves allocated and putting whole right halves on the free lists.
  // No buddy of a freed right half is free, so nothing merges.
  ReservePairs(nodes_[top].order);
  Node* const nodes = nodes_.data();
  free_bytes_ += BlockSize(nodes[top].order) - bytes;
  allocated_.erase(nodes[top].offset);  // re-added piece by piece
  NodeId cur = top;
  uint64_t remaining = bytes;
  while (true) {
    const uint64_t s = BlockSize(nodes[cur].order);
    if (remaining == s) {
      nodes[cur].state = State::kAllocated;
      allocated_.emplace(nodes[cur].offset, cur);
      out->push_back(cur);
      break;
    }
    const NodeId left = Split(nodes, cur);
    const uint64_t half = s / 2;
    if (remaining >= half) {
      nodes[left].state = State::kAllocated;
      nodes[cur].child_max[0] = -1;
      allocated_.emplace(nodes[left].offset, left);
      out->push_back(left);
      remaining -= half;
      if (remaining == 0) {
        ListPush(nodes, left + 1);
        break;
      }
      cur = left + 1;
    } else {
      ListPush(nodes, left + 1);
      cur = left;
    }
  }
  // The chain from `cur` up to `top` changed under each node; fix the child
  // maxima bottom-up, then above `top` as usual.
  for (NodeId n = cur; n != top; n = nodes[n].parent) {
    nodes[nodes[n].parent].child_max[n & 1] =
        static_cast<int8_t>(MaxFree(nodes[n]));
  }
  PropagateMaxFree(nodes, top);
}

void BuddyAllocator::FreeNode(NodeId id) {
  Node* const nodes = nodes_.data();
  free_bytes_ += BlockSize(nodes[id].order);
  nodes[id].state = State::kFree;
  // Merge with free buddies: ListRemove and pair release by hand, with the
  // pool and free-list mask in locals as in AllocateFrom.
  NodeId pairs = free_pairs_;
  uint64_t released = 0;
  uint64_t nonempty = nonempty_orders_;
  NodeId parent;
  while ((parent = nodes[id].parent) != kNone) {
    const Node& buddy = nodes[id ^ 1];
    if (buddy.state != State::kFree) break;
    if (buddy.prev != kNone) {
      nodes[buddy.prev].next = buddy.next;
    } else {
      free_lists_[buddy.order] = buddy.next;
      if (buddy.next == kNone) nonempty &= ~(uint64_t{1} << buddy.order);
    }
    if (buddy.next != kNone) nodes[buddy.next].prev = buddy.prev;
    const NodeId left = id & ~NodeId{1};
    nodes[left].state = nodes[left + 1].state = State::kUnused;
    nodes[left].next = pairs;
    pairs = left;
    ++released;
    id = parent;
    nodes[id].state = State::kFree;
    nodes[id].children = kNone;
  }
  free_pairs_ = pairs;
  num_free_pairs_ += released;
  nonempty_orders_ = nonempty;
  ListPush(nodes, id);
  PropagateMaxFree(nodes, id);
}

absl::StatusOr<std::vector<Block>> BuddyAllocator::Allocate(
    const Request& request) {
  if (request.size == 0) {
    return absl::InvalidArgumentError("Allocate: size is 0");
  }
  if (request.size > size_) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "Allocate: size %d exceeds the region (%d)", request.size, size_));
  }
  const uint64_t start = request.range_start;
  const uint64_t end = request.range_end == 0 ? size_ : request.range_end;
  if (((start | end) & (chunk_size_ - 1)) != 0 || end > size_ || start >= end) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "Allocate: bad range [%#x, %#x) for a region of %#x in chunks of %#x",
        start, end, size_, chunk_size_));
  }
  // No overflow: request.size <= size_, a chunk multiple.
  const uint64_t bytes = (request.size + chunk_size_ - 1) & ~(chunk_size_ - 1);
  if (bytes > end - start) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "Allocate: size %d exceeds the range [%#x, %#x)", bytes, start, end));
  }
  const bool whole_region = start == 0 && end == size_;
  const uint64_t pages = bytes >> chunk_shift_;

  if (request.contiguous) {
    const int order = CeilLog2(pages);
    const uint64_t bs = BlockSize(order);
    // Could an empty region hold a naturally aligned block of `order` inside
    // the range? Roots come largest first, so such blocks can sit anywhere
    // below the end of the last root of at least that order.
    uint64_t limit = 0;
    for (NodeId root = 0; root < num_roots_ && order <= max_order_ &&
                          nodes_[root].order >= order;
         ++root) {
      limit = nodes_[root].offset + BlockSize(nodes_[root].order);
    }
    const uint64_t hi = std::min(end, limit);
    const uint64_t p = (start + bs - 1) & ~(bs - 1);
    if (order > max_order_ || p >= hi || hi - p < bs) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "Allocate: contiguous size %d rounds to %d, and no aligned block of "
          "that size fits in [%#x, %#x) and a root",
          bytes, bs, start, end));
    }
    if (bytes > free_bytes_) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "Allocate: %d bytes wanted, %d free", bytes, free_bytes_));
    }
    const NodeId id =
        whole_region ? FindFree(order) : FindFreeInRange(order, start, end);
    if (id == kNone) {
      return absl::ResourceExhaustedError(absl::StrFormat(
          "Allocate: no free aligned block of %d in [%#x, %#x) for a "
          "contiguous %d bytes",
          bs, start, end, bytes));
    }
    // Bring the block down to `order` inside the range, then trim the tail.
    const NodeId block = AllocateFrom(id, order, start);
    std::vector<NodeId> got;
    if (bytes == bs) {
      got.push_back(block);
    } else {
      Trim(block, bytes, &got);
    }
    std::vector<Block> out;
    out.reserve(got.size());
    for (NodeId n : got) {
      out.push_back(Block{nodes_[n].offset, BlockSize(nodes_[n].order)});
    }
    return out;
  }

  if (bytes > free_bytes_) {
    return absl::ResourceExhaustedError(absl::StrFormat(
        "Allocate: %d bytes wanted, %d free", bytes, free_bytes_));
  }
  // As drm_buddy_alloc_blocks: the largest order that the remaining size
  // allows, dropping to smaller orders (for good) when nothing fits.
  absl::InlinedVector<NodeId, 8> got;
  uint64_t remaining = pages;
  int order = std::min(FloorLog2(pages), max_order_);
  while (remaining != 0) {
    order = std::min(order, FloorLog2(remaining));
    NodeId id;
    while (true) {
      id = whole_region ? FindFree(order) : FindFreeInRange(order, start, end);
      if (id != kNone) break;
      if (order == 0) {
        // Put everything back; freeing merges the split buddies again.
        for (NodeId n : got) {
          allocated_.erase(nodes_[n].offset);
          FreeNode(n);
        }
        return absl::ResourceExhaustedError(absl::StrFormat(
            "Allocate: %d bytes wanted, fewer free in [%#x, %#x)", bytes, start,
            end));
      }
      --order;
    }
    got.push_back(AllocateFrom(id, order, start));
    remaining -= uint64_t{1} << order;
  }
  std::vector<Block> out;
  out.reserve(got.size());
  for (NodeId n : got) {
    out.push_back(Block{nodes_[n].offset, BlockSize(nodes_[n].order)});
  }
  return out;
}

absl::Status BuddyAllocator::Free(const std::vector<Block>& blocks) {
  using Iterator = absl::flat_hash_map<uint64_t, NodeId>::iterator;
  absl::InlinedVector<Iterator, 4> found;
  found.reserve(blocks.size());
  for (const Block& block : blocks) {
    const Iterator it = allocated_.find(block.offset);
    const bool known = it != allocated_.end() &&
                       BlockSize(nodes_[it->second].order) == block.size;
    const bool duplicate = known && nodes_[it->second].freeing;
    if (!known || duplicate) {
      for (const Iterator& f : found) nodes_[f->second].freeing = false;
      return absl::InvalidArgumentError(absl::StrCat(
          "Free: block ", BlockString(block),
          duplicate ? " is listed twice" : " is not an allocated block"));
    }
    nodes_[it->second].freeing = true;
    found.push_back(it);
  }
  // Erasing from allocated_ invalidates only the erased iterator, and freeing
  // releases only pairs whose nodes are all free, so the remaining iterators
  // and node ids stay valid throughout.
  for (const Iterator& it : found) {
    const NodeId id = it->second;
    allocated_.erase(it);
    nodes_[id].freeing = false;
    FreeNode(id);
  }
  return absl::OkStatus();
}

uint64_t BuddyAllocator::free_bytes_in_range(uint64_t start,
                                             uint64_t end) const {
  uint64_t total = 0;
  std::vector<NodeId> stack;
  for (NodeId root = 0; root < num_roots_; ++root) stack.push_back(root);
  while (!stack.empty()) {
    const NodeId id = stack.back();
    stack.pop_back();
    const Node& n = nodes_[id];
    const uint64_t lo = std::max(n.offset, start);
    const uint64_t hi = std::min(n.offset + BlockSize(n.order), end);
    if (lo >= hi || MaxFree(n) < 0) continue;
    if (n.state == State::kFree) {
      total += hi - lo;
    } else if (n.state == State::kSplit) {
      stack.push_back(n.children);
      stack.push_back(n.children + 1);
    }
  }
  return total;
}

uint64_t BuddyAllocator::largest_free_block() const {
  if (nonempty_orders_ == 0) return 0;
  return BlockSize(FloorLog2(nonempty_orders_));
}

uint64_t BuddyAllocator::largest_root() const { return BlockSize(max_order_); }

absl::Status BuddyAllocator::CheckSubtree(
    NodeId id, uint64_t* free_sum, uint64_t* allocated_sum,
    std::vector<uint64_t>* free_count_by_order, std::vector<bool>* in_tree,
    uint64_t* allocated_count) const {
  const Node& n = nodes_[id];
  const uint64_t s = BlockSize(n.order);
  const std::string where =
      absl::StrFormat("node %d {offset=%#x, order=%d}", id, n.offset,
                      static_cast<int>(n.order));
  if ((*in_tree)[id]) {
    return absl::InternalError(where + " is reachable twice (tree cycle)");
  }
  (*in_tree)[id] = true;
  if (n.offset % s != 0) {
    return absl::InternalError(where + " is not aligned to its size");
  }
  if (n.freeing) {
    return absl::InternalError(where + " still marked as being freed");
  }
  switch (n.state) {
    case State::kFree:
      if (n.children != kNone) {
        return absl::InternalError(where + " is free but has children");
      }
      *free_sum += s;
      ++(*free_count_by_order)[n.order];
      return absl::OkStatus();
    case State::kAllocated: {
      if (n.children != kNone) {
        return absl::InternalError(where + " is allocated but has children");
      }
      const auto it = allocated_.find(n.offset);
      if (it == allocated_.end() || it->second != id) {
        return absl::InternalError(where +
                                   " is allocated but not in the offset map");
      }
      *allocated_sum += s;
      ++*allocated_count;
      return absl::OkStatus();
    }
    case State::kUnused:
      return absl::InternalError(where + " is in the tree but marked unused");
    case State::kSplit:
      break;
  }
  const NodeId c = n.children;
  if (n.order == 0 || c == kNone || c % 2 != 0 || c < num_roots_ ||
      c + 1 >= nodes_.size()) {
    return absl::InternalError(
        absl::StrFormat("%s is split with bad children %d", where, c));
  }
  for (int i = 0; i < 2; ++i) {
    const Node& child = nodes_[c + i];
    if (child.parent != id || child.order != n.order - 1 ||
        child.offset != n.offset + i * (s / 2)) {
      return absl::InternalError(absl::StrFormat(
          "%s: child %d {offset=%#x, order=%d, parent=%d} does not match",
          where, c + i, child.offset, static_cast<int>(child.order),
          child.parent));
    }
  }
  if (nodes_[c].state == State::kFree && nodes_[c + 1].state == State::kFree) {
    return absl::InternalError(where + " has two free buddies left unmerged");
  }
  for (int i = 0; i < 2; ++i) {
    absl::Status status =
        CheckSubtree(c + i, free_sum, allocated_sum, free_count_by_order,
                     in_tree, allocated_count);
    if (!status.ok()) return status;
    // The child's own maximum is checked by now.
    if (n.child_max[i] != MaxFree(nodes_[c + i])) {
      return absl::InternalError(absl::StrFormat(
          "%s caches %d as child %d's largest free order, subtree has %d",
          where, n.child_max[i], i, MaxFree(nodes_[c + i])));
    }
  }
  return absl::OkStatus();
}

absl::Status BuddyAllocator::CheckInvariantsForTest() const {
  uint64_t free_sum = 0;
  uint64_t allocated_sum = 0;
  std::vector<uint64_t> free_count(max_order_ + 1, 0);
  std::vector<bool> in_tree(nodes_.size(), false);
  uint64_t allocated_count = 0;
  uint64_t expected_offset = 0;
  for (NodeId root = 0; root < num_roots_; ++root) {
    const Node& r = nodes_[root];
    if (r.parent != kNone || r.offset != expected_offset ||
        (root > 0 && r.order >= nodes_[root - 1].order)) {
      return absl::InternalError(
          absl::StrFormat("root %d {offset=%#x, order=%d} out of place", root,
                          r.offset, static_cast<int>(r.order)));
    }
    expected_offset += BlockSize(r.order);
    absl::Status status = CheckSubtree(root, &free_sum, &allocated_sum,
                                       &free_count, &in_tree, &allocated_count);
    if (!status.ok()) return status;
  }
  if (expected_offset != size_) {
    return absl::InternalError(absl::StrFormat(
        "roots cover %#x bytes, region is %#x", expected_offset, size_));
  }
  if (allocated_count != allocated_.size()) {
    return absl::InternalError(
        absl::StrFormat("offset map holds %d blocks, the tree %d allocated",
                        allocated_.size(), allocated_count));
  }
  if (free_sum != free_bytes_) {
    return absl::InternalError(absl::StrFormat(
        "free_bytes %d but free blocks sum to %d", free_bytes_, free_sum));
  }
  if (free_sum + allocated_sum != size_) {
    return absl::InternalError(absl::StrFormat(
        "free %d + allocated %d != size %d", free_sum, allocated_sum, size_));
  }
  for (int order = 0; order <= max_order_; ++order) {
    uint64_t count = 0;
    NodeId prev = kNone;
    for (NodeId id = free_lists_[order]; id != kNone; id = nodes_[id].next) {
      if (id >= nodes_.size() || count > nodes_.size()) {
        return absl::InternalError(
            absl::StrFormat("free list %d is broken (cycle or bad id)", order));
      }
      const Node& n = nodes_[id];
      if (n.state != State::kFree || n.order != order || n.prev != prev) {
        return absl::InternalError(absl::StrFormat(
            "free list %d holds node %d {offset=%#x, order=%d} that is not a "
            "linked free block of that order",
            order, id, n.offset, static_cast<int>(n.order)));
      }
      if (!in_tree[id]) {
        return absl::InternalError(absl::StrFormat(
            "free list %d holds node %d that is not in the tree", order, id));
      }
      prev = id;
      ++count;
    }
    if (count != free_count[order]) {
      return absl::InternalError(
          absl::StrFormat("free list %d has %d blocks, the tree %d", order,
                          count, free_count[order]));
    }
    const bool bit = (nonempty_orders_ >> order) & 1;
    if (bit != (count != 0)) {
      return absl::InternalError(
          absl::StrFormat("non-empty mask wrong for order %d", order));
    }
  }
  if ((nonempty_orders_ >> (max_order_ + 1)) != 0) {
    return absl::InternalError("non-empty mask has bits above the max order");
  }
  uint64_t pairs = 0;
  for (NodeId id = free_pairs_; id != kNone; id = nodes_[id].next) {
    if (id >= nodes_.size() || pairs > nodes_.size() ||
        nodes_[id].state != State::kUnused ||
        nodes_[id + 1].state != State::kUnused) {
      return absl::InternalError("node pool free list is broken");
    }
    ++pairs;
  }
  const uint64_t pad = num_roots_ % 2;
  const uint64_t live_nodes = std::count(in_tree.begin(), in_tree.end(), true);
  if (pairs != num_free_pairs_ ||
      live_nodes + 2 * pairs + pad != nodes_.size()) {
    return absl::InternalError(absl::StrFormat(
        "node pool leak: %d live + %d free pairs + %d pad != %d nodes",
        live_nodes, pairs, pad, nodes_.size()));
  }
  return absl::OkStatus();
}

}  // namespace gpumig
