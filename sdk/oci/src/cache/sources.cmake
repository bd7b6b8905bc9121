# Cache building blocks (include/registryd/oci/cache/): coalesced fills that stream a blob to
# every waiting client while it is written, and the access times and policy eviction uses.
# Part of registryd::oci, listed here so these files change without touching the library's
# shared list. The Proxy mode and the packages proxy use them.
target_sources(registryd_oci PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/blob_fill.cpp
  ${CMAKE_CURRENT_LIST_DIR}/eviction.cpp
  ${CMAKE_CURRENT_LIST_DIR}/upstream_fill.cpp)
