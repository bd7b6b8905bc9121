# Replica sync for the Local mode (include/registryd/oci/replica/, docs/replica-sync.md): the
# replica state, the plan of a round, the local journal of deletions, the peers and the engine.
# Part of registryd::oci, listed here so these files change without touching the library's
# shared list.
target_sources(registryd_oci PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/local_replica.cpp
  ${CMAKE_CURRENT_LIST_DIR}/peer.cpp
  ${CMAKE_CURRENT_LIST_DIR}/plan.cpp
  ${CMAKE_CURRENT_LIST_DIR}/state.cpp
  ${CMAKE_CURRENT_LIST_DIR}/sync_engine.cpp)
