#include "probes/anonymous_pages.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <string>

#include "probes/probe_error.hpp"

namespace echolab::probe {

AnonymousPages::AnonymousPages(std::size_t pages, PageKind kind) : pages_(pages) {
  if (pages_ == 0) return;
  void* mapping = ::mmap(nullptr, pages_ * page_size(), PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapping == MAP_FAILED) {
    throw_system_error("mmap of " + std::to_string(pages_ * page_size() / 1024) + " KiB");
  }
  // A huge page replaces 512 page-table entries by one, which is most of what fork copies:
  // small pages are the default because a long-lived heap is mostly mapped with them.
  (void)::madvise(mapping, pages_ * page_size(),
                  kind == PageKind::huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  data_ = static_cast<volatile char*>(mapping);
}

AnonymousPages::~AnonymousPages() {
  if (data_ != nullptr) {
    // const_cast only drops volatile for the call: nothing is read or written through it.
    (void)::munmap(const_cast<char*>(data_), pages_ * page_size());
  }
}

void AnonymousPages::write_every_page() noexcept {
  const std::size_t stride = page_size();
  for (std::size_t page = 0; page < pages_; ++page) {
    data_[page * stride] = static_cast<char>(data_[page * stride] + 1);
  }
}

std::size_t AnonymousPages::page_size() {
  static const auto size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

}  // namespace echolab::probe
