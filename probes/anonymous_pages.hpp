// Private anonymous memory, in 4 KiB pages unless huge pages are asked for, written page by
// page. It plays two parts: the
// resident memory of a large parent process (the page tables that fork() must copy grow with
// it), and the working set a thread or process touches between context switches (one TLB
// entry per page).
#pragma once

#include <cstddef>

namespace echolab::probe {

class AnonymousPages {
 public:
  // Small pages by default. Huge pages (transparent, 2 MiB on x86-64) are asked for, not
  // guaranteed: the kernel may lack them or be configured never to use them.
  enum class PageKind { small, huge };

  // No mapping at all when `pages` (of the base page size) is 0.
  explicit AnonymousPages(std::size_t pages, PageKind kind = PageKind::small);
  ~AnonymousPages();
  AnonymousPages(const AnonymousPages&) = delete;
  AnonymousPages& operator=(const AnonymousPages&) = delete;
  AnonymousPages(AnonymousPages&&) = delete;
  AnonymousPages& operator=(AnonymousPages&&) = delete;

  // Writes one byte in every page: the first call makes every page resident and private to
  // the writer; later calls cost one TLB entry (and one cache line) per page. Only memory
  // accesses, so a forked child may call it.
  void write_every_page() noexcept;

  std::size_t pages() const { return pages_; }

  static std::size_t page_size();

 private:
  std::size_t pages_ = 0;
  volatile char* data_ = nullptr;
};

}  // namespace echolab::probe
