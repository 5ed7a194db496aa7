// Suppressions for ThreadSanitizer runs (--config=tsan), linked into every
// binary that uses core/base/mutex.h.
//
// Debian's libabsl is not built with TSan: absl::Mutex's deadlock detector
// (GraphCycles) synchronises its graph with an internal lock TSan cannot
// see, so its own memmoves look like races; absl::Status drops its last
// reference in the uninstrumented UnrefNonInlined, so TSan misses the
// release that orders a shared StatusRep's deletion. They are absl's races,
// not ours.
extern "C" const char* __tsan_default_suppressions() {
  return "called_from_lib:libabsl_graphcycles_internal.so.20220623\n"
         "race:absl::debian3::synchronization_internal::GraphCycles\n"
         "race:absl::debian3::Status::Unref\n"
         "race:absl::debian3::Status::Ref\n";
}
