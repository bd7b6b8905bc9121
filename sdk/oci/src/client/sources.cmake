# The upstream registry client (include/registryd/oci/client/, docs/upstream-client.md) and the
# image check built on it: part of registryd::oci, listed here so the client's files change
# without touching the library's shared list. The wire is Boost.Asio and Boost.Beast
# (header-only) with OpenSSL's TLS, linked by whatever links registryd::oci.
target_sources(registryd_oci PRIVATE
  ${CMAKE_CURRENT_LIST_DIR}/connection_pool.cpp
  ${CMAKE_CURRENT_LIST_DIR}/docker_config.cpp
  ${CMAKE_CURRENT_LIST_DIR}/error.cpp
  ${CMAKE_CURRENT_LIST_DIR}/image_check.cpp
  ${CMAKE_CURRENT_LIST_DIR}/link_header.cpp
  ${CMAKE_CURRENT_LIST_DIR}/message.cpp
  ${CMAKE_CURRENT_LIST_DIR}/options.cpp
  ${CMAKE_CURRENT_LIST_DIR}/registry_client.cpp
  ${CMAKE_CURRENT_LIST_DIR}/response_stream.cpp
  ${CMAKE_CURRENT_LIST_DIR}/scope.cpp
  ${CMAKE_CURRENT_LIST_DIR}/token_exchange.cpp
  ${CMAKE_CURRENT_LIST_DIR}/transport.cpp
  ${CMAKE_CURRENT_LIST_DIR}/token_cache.cpp
  ${CMAKE_CURRENT_LIST_DIR}/url.cpp
  ${CMAKE_CURRENT_LIST_DIR}/www_authenticate.cpp)
target_compile_definitions(registryd_oci PRIVATE BOOST_ASIO_NO_DEPRECATED)
target_link_libraries(registryd_oci PUBLIC OpenSSL::SSL PRIVATE Boost::headers)
