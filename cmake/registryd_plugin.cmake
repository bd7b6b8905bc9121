# registryd_add_plugin(<target> NAME <file name without .so> SOURCES <src>...)
#
# Builds a registryd plugin: a shared object named <NAME>.so that exports only the
# registryd_plugin_entry symbol (everything else hidden, so two plugins never clash), linked
# against the SDK only. The host loads <plugin dir>/<NAME>.so.
function(registryd_add_plugin target)
  cmake_parse_arguments(ARG "" "NAME" "SOURCES" ${ARGN})
  if(NOT ARG_NAME)
    set(ARG_NAME ${target})
  endif()
  add_library(${target} MODULE ${ARG_SOURCES})
  target_link_libraries(${target} PRIVATE registryd::sdk)
  set_target_properties(${target} PROPERTIES
    PREFIX ""
    OUTPUT_NAME ${ARG_NAME}
    CXX_VISIBILITY_PRESET hidden
    C_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON)
  if(DEFINED REGISTRYD_PLUGIN_OUTPUT_DIR)
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${REGISTRYD_PLUGIN_OUTPUT_DIR})
  endif()
  # Unresolved symbols are an error at link time, not at load time in production. The version
  # script keeps the entry point the only exported symbol: hidden visibility alone still lets
  # standard-library template instances escape, and two plugins could then clash.
  set(map ${CMAKE_CURRENT_BINARY_DIR}/${target}.map)
  file(WRITE ${map} "{ global: registryd_plugin_entry; local: *; };\n")
  target_link_options(${target} PRIVATE -Wl,--no-undefined -Wl,--version-script=${map})
  set_property(TARGET ${target} APPEND PROPERTY LINK_DEPENDS ${map})
endfunction()
