/*
 * registryd plugin ABI: the one boundary between the registryd host and a mode plugin.
 *
 * Plain C on purpose: a plugin built with another compiler, standard library or exception
 * model must load. Nothing C++ crosses this boundary: no exceptions, no std:: types, no
 * allocator. Data crosses as borrowed views (registryd_str), JSON text and callbacks.
 *
 * Naming: `registryd_plugin_api` is implemented by the plugin and called by the host;
 * `registryd_host_api`, `registryd_sink`, `registryd_body_reader` and
 * `registryd_response_writer` are implemented by the host and called by the plugin.
 *
 * Versioning: the table is append-only. A field is never removed, reordered or retyped within
 * one major version; new fields are appended and raise the minor version. `struct_size` tells
 * the reader how much of a table the writer knows, so an older plugin's shorter table is read
 * safely. The host refuses a plugin whose ABI major differs from its own, or whose minor is
 * newer than its own (it may rely on host functions the host does not have).
 *
 * Growable and frozen structs: the tables and the structs that reach across calls carry a
 * `struct_size` and grow by appending (registryd_plugin_api, registryd_host_api,
 * registryd_request, registryd_response_writer). Three small structs are FROZEN for the whole
 * major version 1: registryd_sink and registryd_stream, which cross the boundary by value
 * (a size field could not make a larger one fit a caller compiled against the smaller), and
 * registryd_body_reader, whose one function already streams everything a body has. A new
 * capability of any of them arrives as a new function appended to a growable table (for
 * example a `send_stream2` in registryd_response_writer taking a larger stream struct by
 * pointer), never as a field of the frozen struct.
 *
 * Most plugin authors never touch this file directly: <registryd/sdk/plugin.hpp> wraps it.
 */
#ifndef REGISTRYD_PLUGIN_ABI_H
#define REGISTRYD_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define REGISTRYD_PLUGIN_ABI_MAJOR 1
#define REGISTRYD_PLUGIN_ABI_MINOR 0

/* The one symbol a plugin exports. */
#define REGISTRYD_PLUGIN_ENTRY_SYMBOL "registryd_plugin_entry"

#if defined(_WIN32)
#define REGISTRYD_PLUGIN_EXPORT __declspec(dllexport)
#else
#define REGISTRYD_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

/* A borrowed byte range. Not NUL-terminated. Valid only for the duration of the call that
 * passes it, unless a field's comment says otherwise. */
typedef struct registryd_str {
  const char* data;
  size_t size;
} registryd_str;

/* Result of a plugin function. Values are stable; new ones may be appended. */
typedef enum registryd_status {
  REGISTRYD_OK = 0,
  REGISTRYD_ERR_INVALID_ARGUMENT = 1, /* bad settings or input; the message says which */
  REGISTRYD_ERR_UNSUPPORTED = 2,      /* the operation is not offered by this plugin */
  REGISTRYD_ERR_UNAVAILABLE = 3,      /* a dependency (disk, upstream) is not reachable now */
  REGISTRYD_ERR_INTERNAL = 4          /* a bug or an unexpected failure */
} registryd_status;

/* Log levels, in increasing severity (same order as spdlog). */
typedef enum registryd_log_level {
  REGISTRYD_LOG_TRACE = 0,
  REGISTRYD_LOG_DEBUG = 1,
  REGISTRYD_LOG_INFO = 2,
  REGISTRYD_LOG_WARN = 3,
  REGISTRYD_LOG_ERROR = 4
} registryd_log_level;

/* Access a request's user holds, as a bit set. The host has already authenticated the user
 * and refused requests the user may not make; plugins may use it for finer decisions. */
#define REGISTRYD_ACCESS_PULL 1u
#define REGISTRYD_ACCESS_PUSH 2u
#define REGISTRYD_ACCESS_DELETE 4u

/* FROZEN (see the top of this file). A host-owned place to write text to (an error message,
 * JSON, metrics).
 * `write` may be called any number of times; the pieces are concatenated. It copies the bytes,
 * so `text` need only live for the call. Valid only during the call it is passed to.
 * Thread-safety: a sink belongs to one call on one thread. */
typedef struct registryd_sink {
  void* ctx;
  void (*write)(void* ctx, registryd_str text);
} registryd_sink;

/* Services the host offers every plugin. Owned by the host, valid from `create` until
 * `destroy` returns. All functions are thread-safe. */
typedef struct registryd_host_api {
  uint32_t abi_major;
  uint32_t abi_minor;
  uint32_t struct_size; /* sizeof(registryd_host_api) as the host knows it */
  void* ctx;            /* pass back as the first argument of every function below */
  /* Writes one log line through the host's logger, tagged with the plugin's name. */
  void (*log)(void* ctx, registryd_log_level level, registryd_str message);
} registryd_host_api;

/* One request header. Both views valid for the duration of `handle`. */
typedef struct registryd_header {
  registryd_str name;
  registryd_str value;
} registryd_header;

/* Called by the host for each piece of a request body, in order.
 * Return 0 to go on, non-zero to stop reading (the rest of the body is discarded). */
typedef int (*registryd_body_chunk_fn)(void* chunk_ctx, registryd_str chunk);

/* FROZEN (see the top of this file). The body of a request, streamed: never held whole in
 * memory by the host.
 * Owned by the host; valid for the duration of `handle`; one thread. */
typedef struct registryd_body_reader {
  void* ctx;
  /* Size announced by the client, or -1 when unknown (chunked transfer encoding). */
  int64_t content_length;
  /* Delivers the body to `on_chunk` piece by piece until the end, an error, or on_chunk asks
   * to stop (the host then reads the rest and drops it). May be called once. Returns 0 when
   * the whole body was delivered, -1 otherwise. A body the plugin never reads is drained by the
   * host after `handle` returns. */
  int (*read)(void* ctx, registryd_body_chunk_fn on_chunk, void* chunk_ctx);
} registryd_body_reader;

/* A request routed to the plugin. Owned by the host; valid for the duration of `handle`. */
typedef struct registryd_request {
  uint32_t struct_size;
  registryd_str method;      /* "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE" */
  registryd_str path;        /* decoded path, starting with "/v2/"; the host has refused paths
                                with an empty, "." or ".." segment, an encoded '/' or a control
                                character (400 NAME_INVALID), so it is safe to map to storage */
  registryd_str query;       /* raw query string without '?', possibly empty */
  const registryd_header* headers;
  size_t header_count;
  registryd_str remote_addr; /* client address as text */
  registryd_str user;        /* authenticated user; empty when authentication is off */
  uint32_t access;           /* REGISTRYD_ACCESS_* bits the user holds */
  const registryd_body_reader* body;
} registryd_request;

/* FROZEN (see the top of this file). A plugin-owned source of response bytes, handed to the
 * host by `send_stream`.
 * The host calls `read` until it returns 0 (end) or -1 (error; the connection is closed),
 * then calls `close` exactly once, also when the client went away early. `read` and `close`
 * are called on one thread, possibly after `handle` has returned; the plugin library stays
 * loaded until `close` has returned. */
typedef struct registryd_stream {
  void* ctx;
  /* Fills up to `capacity` bytes of `buffer`; returns the count, 0 at the end, -1 on error. */
  int64_t (*read)(void* ctx, char* buffer, size_t capacity);
  void (*close)(void* ctx);
} registryd_stream;

/* Where the plugin writes its response. Owned by the host; valid during `handle`.
 * Order: set_status and add_header any number of times, then at most one of send_bytes,
 * send_stream or send_file. With none, the body is empty. For HEAD requests the host sends
 * headers only, and a Content-Length header the plugin set is kept as it is.
 * Every function returns 0 on success, -1 when called out of order. One thread. */
typedef struct registryd_response_writer {
  uint32_t struct_size;
  void* ctx;
  int (*set_status)(void* ctx, int status);
  int (*add_header)(void* ctx, registryd_str name, registryd_str value);
  /* Sends a body from memory; the host copies it. Meant for small bodies (manifests, JSON). */
  int (*send_bytes)(void* ctx, registryd_str content_type, registryd_str body);
  /* Streams a body. `length` is the exact size, or -1 for chunked transfer.
   * OWNERSHIP: the host owns `stream` from this call on and calls its `close` exactly once,
   * even when this call fails. */
  int (*send_stream)(void* ctx, registryd_str content_type, int64_t length,
                     registryd_stream stream);
  /* Serves `length` bytes of an open file from `offset`, without the plugin copying them.
   * OWNERSHIP: the host owns `fd` from this call on and closes it, even when this call fails.
   * Passing a descriptor rather than a path keeps the content stable even if the file is
   * unlinked (by garbage collection, say) while it is being sent. */
  int (*send_file)(void* ctx, registryd_str content_type, int fd, uint64_t offset,
                   uint64_t length);
} registryd_response_writer;

/* An instance of a plugin, opaque to the host. */
typedef struct registryd_plugin registryd_plugin;

/* What a plugin offers. Returned by the entry point; static storage in the plugin, valid
 * while the library is loaded. REQUIRED fields must be non-NULL; OPTIONAL ones may be NULL,
 * which means "not offered" as described for each. */
typedef struct registryd_plugin_api {
  uint32_t abi_major;   /* REGISTRYD_PLUGIN_ABI_MAJOR the plugin was built with */
  uint32_t abi_minor;   /* REGISTRYD_PLUGIN_ABI_MINOR the plugin was built with */
  uint32_t struct_size; /* sizeof(registryd_plugin_api) as the plugin knows it */
  registryd_str name;    /* mode name, e.g. "Unmanaged"; static storage */
  registryd_str version; /* plugin version, e.g. "1.0.0"; static storage */

  /* REQUIRED. Creates an instance. `settings_json` is the plugin settings document (see
   * docs/plugin-authors.md: mode, the mode's section of the ModuleConfig, host paths).
   * On success stores the instance in *out and returns REGISTRYD_OK; the host later calls
   * `destroy` on it. On failure writes the reason to `error` and leaves *out untouched.
   * `host` stays valid until destroy returns. Called once per instance, never concurrently. */
  registryd_status (*create)(const registryd_host_api* host, registryd_str settings_json,
                             registryd_plugin** out, registryd_sink error);

  /* REQUIRED. Destroys an instance made by `create`. After `stop`, if started. */
  void (*destroy)(registryd_plugin* plugin);

  /* OPTIONAL. Checks settings without creating an instance; same document as `create`.
   * NULL: the host relies on `create` to report bad settings. Thread-safe. */
  registryd_status (*validate_settings)(registryd_str settings_json, registryd_sink error);

  /* OPTIONAL. Describes, as JSON written to `out`, the containerd registry configuration that
   * nodes need while this mode is in force (schema: docs/plugin-authors.md, "containerd").
   * The host renders it to hosts.toml files. NULL: the mode needs no containerd changes.
   * Thread-safe. */
  registryd_status (*describe_containerd)(registryd_plugin* plugin, registryd_sink out,
                                          registryd_sink error);

  /* OPTIONAL. Starts storage and background work. Called once after create, before any
   * request. NULL: nothing to start. */
  registryd_status (*start)(registryd_plugin* plugin, registryd_sink error);

  /* OPTIONAL. Stops background work; no request is in flight when it is called and none
   * follows. NULL: nothing to stop. */
  void (*stop)(registryd_plugin* plugin);

  /* REQUIRED. Handles one registry API request (path under /v2/, the version check excluded).
   * Called concurrently from many threads. Must answer through `response`; on errors the
   * plugin writes an OCI error body itself. */
  void (*handle)(registryd_plugin* plugin, const registryd_request* request,
                 const registryd_response_writer* response);

  /* OPTIONAL. REGISTRYD_OK when the instance can serve; otherwise a reason in `message`.
   * Feeds /readyz. NULL: always healthy. Thread-safe. */
  registryd_status (*health)(registryd_plugin* plugin, registryd_sink message);

  /* OPTIONAL. Writes the plugin's metrics in the Prometheus text exposition format (HELP and
   * TYPE lines included), names prefixed "registryd_". Appended to the host's /metrics.
   * NULL: no metrics of its own. Thread-safe. */
  void (*metrics)(registryd_plugin* plugin, registryd_sink out);
} registryd_plugin_api;

/* The entry point every plugin exports as REGISTRYD_PLUGIN_ENTRY_SYMBOL. Returns a table in
 * static storage; never NULL. */
typedef const registryd_plugin_api* (*registryd_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* REGISTRYD_PLUGIN_ABI_H */
