#include <registryd/balancer/node_balancer.hpp>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

namespace registryd::balancer {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;

// "10.0.0.1:5001" or "[fd00::1]:5001".
util::result<tcp::endpoint> parse_endpoint(const std::string& text) {
  std::string host;
  std::string port;
  if (text.starts_with('[')) {
    const auto close = text.find("]:");
    if (close == std::string::npos) return util::error{"\"" + text + "\" is not [IPv6]:port"};
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) return util::error{"\"" + text + "\" is not IP:port"};
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(host, ec);
  if (ec) return util::error{"\"" + text + "\": " + host + " is not an IP address"};
  const auto digit = [](unsigned char c) { return c >= '0' && c <= '9'; };
  if (port.empty() || port.size() > 5 || !std::all_of(port.begin(), port.end(), digit) || std::stoi(port) == 0 ||
      std::stoi(port) > 65535) {
    return util::error{"\"" + text + "\": the port must be 1 to 65535"};
  }
  return tcp::endpoint(ip, static_cast<std::uint16_t>(std::stoi(port)));
}

}  // namespace

struct backend {
  std::string address;
  tcp::endpoint endpoint;
  std::atomic<bool> healthy{true};
  std::atomic<bool> removed{false};
  std::atomic<std::size_t> active{0};
  std::atomic<std::uint64_t> total{0};
  std::atomic<std::uint64_t> connect_failures{0};
  std::mutex failure_mutex;
  std::string last_failure;
  prometheus::Gauge* up = nullptr;
  prometheus::Gauge* connections = nullptr;
  prometheus::Counter* connections_total = nullptr;
  prometheus::Counter* failures = nullptr;
  prometheus::Counter* health_failures = nullptr;
  std::unique_ptr<asio::steady_timer> check_timer;
};

struct session;

struct node_balancer::impl : std::enable_shared_from_this<node_balancer::impl> {
  impl(balancer_options o, std::shared_ptr<prometheus::Registry> m, std::shared_ptr<spdlog::logger> l)
      : opts(std::move(o)),
        metrics(std::move(m)),
        logger(std::move(l)),
        acceptor(ioc),
        tls(asio::ssl::context::tls_client),
        up_family(prometheus::BuildGauge()
                      .Name("registryd_balancer_backend_up")
                      .Help("1 while the master is in rotation (its last health check or connect succeeded).")
                      .Register(*metrics)),
        connections_family(prometheus::BuildGauge()
                               .Name("registryd_balancer_backend_connections")
                               .Help("Connections relayed to the master now.")
                               .Register(*metrics)),
        connections_total_family(prometheus::BuildCounter()
                                     .Name("registryd_balancer_backend_connections_total")
                                     .Help("Connections relayed to the master since start.")
                                     .Register(*metrics)),
        failures_family(prometheus::BuildCounter()
                            .Name("registryd_balancer_backend_connect_failures_total")
                            .Help("Connects to the master that failed or timed out (each retried on another).")
                            .Register(*metrics)),
        health_failures_family(prometheus::BuildCounter()
                                   .Name("registryd_balancer_backend_health_check_failures_total")
                                   .Help("Health checks of the master that failed.")
                                   .Register(*metrics)),
        refused_clients(prometheus::BuildCounter()
                            .Name("registryd_balancer_refused_connections_total")
                            .Help("Client connections closed because no master took them, or over max_connections.")
                            .Register(*metrics)
                            .Add({})) {}

  std::shared_ptr<backend> make_backend(const std::string& address, const tcp::endpoint& ep) {
    auto b = std::make_shared<backend>();
    b->address = address;
    b->endpoint = ep;
    const prometheus::Labels labels{{"backend", address}};
    b->up = &up_family.Add(labels);
    b->up->Set(1);
    b->connections = &connections_family.Add(labels);
    b->connections_total = &connections_total_family.Add(labels);
    b->failures = &failures_family.Add(labels);
    b->health_failures = &health_failures_family.Add(labels);
    b->check_timer = std::make_unique<asio::steady_timer>(ioc);
    return b;
  }

  void mark(backend& b, bool healthy, const std::string& why) {
    if (!healthy) {
      std::lock_guard lock(b.failure_mutex);
      b.last_failure = why;
    }
    if (b.healthy.exchange(healthy) == healthy) return;
    b.up->Set(healthy ? 1 : 0);
    if (healthy) {
      logger->info("balancer: master {} is back in rotation", b.address);
    } else {
      logger->warn("balancer: master {} is out of rotation: {}", b.address, why);
    }
  }

  // The master for a new connection: healthy first, then fewest connections, ties in turn;
  // nullptr when every master was tried. The connection counts against it from here (a
  // connect under way is a connection, as nginx's least_conn counts it), so concurrent
  // picks spread.
  std::shared_ptr<backend> pick(const std::vector<backend*>& tried) {
    std::lock_guard lock(mutex);
    std::shared_ptr<backend> best;
    const std::size_t n = list.size();
    const std::size_t start = n ? next++ % n : 0;
    for (std::size_t i = 0; i < n; ++i) {
      const auto& b = list[(start + i) % n];
      if (std::find(tried.begin(), tried.end(), b.get()) != tried.end()) continue;
      if (!best) {
        best = b;
        continue;
      }
      const bool bh = best->healthy, h = b->healthy;
      if (h != bh) {
        if (h) best = b;
        continue;
      }
      if (b->active < best->active) best = b;
    }
    if (best) {
      best->active++;
      best->connections->Increment();
    }
    return best;
  }

  // --- health checks --------------------------------------------------------------------------
  void schedule_check(const std::shared_ptr<backend>& b, std::chrono::milliseconds delay) {
    if (stopping || b->removed) return;
    b->check_timer->expires_after(delay);
    b->check_timer->async_wait([self = shared_from_this(), b](boost::system::error_code ec) {
      if (ec || self->stopping || b->removed) return;
      self->check(b);
    });
  }

  template <typename Stream>
  struct check_state {
    Stream stream;
    beast::flat_buffer buffer;
    http::request<http::empty_body> request;
    http::response_parser<http::string_body> response;
    steady::time_point started = steady::now();
    template <typename... Args>
    explicit check_state(Args&&... args) : stream(std::forward<Args>(args)...) {}
  };

  // After connect (and handshake): GET the health path, 200 means in rotation.
  template <typename State>
  void request_health(const std::shared_ptr<backend>& b, const std::shared_ptr<State>& st) {
    st->request = {http::verb::get, opts.health_path, 11};
    st->request.set(http::field::host, b->address);
    st->request.set(http::field::user_agent, "registryd-node-balancer");
    st->request.set(http::field::connection, "close");
    st->response.body_limit(64 * 1024);
    http::async_write(st->stream, st->request,
                      [self = shared_from_this(), b, st](beast::error_code ec, std::size_t) {
                        if (ec) return self->checked(b, "sending the health check: " + ec.message());
                        http::async_read(st->stream, st->buffer, st->response,
                                         [self, b, st](beast::error_code ec2, std::size_t) {
                                           if (ec2) return self->checked(b, "reading the health answer: " + ec2.message());
                                           const auto status = st->response.get().result_int();
                                           if (status != 200) {
                                             return self->checked(b, opts_path(self->opts) + " answered " +
                                                                         std::to_string(status));
                                           }
                                           self->checked(b, "");
                                         });
                      });
  }
  static std::string opts_path(const balancer_options& o) { return o.health_path; }

  void check(const std::shared_ptr<backend>& b) {
    const auto deadline = opts.health_timeout;
    if (!opts.health_ca_file) {
      auto st = std::make_shared<check_state<beast::tcp_stream>>(asio::make_strand(ioc));
      st->stream.expires_after(deadline);
      st->stream.async_connect(b->endpoint, [self = shared_from_this(), b, st](beast::error_code ec) {
        if (ec) return self->checked(b, "connect: " + ec.message());
        self->request_health(b, st);
      });
      return;
    }
    auto st = std::make_shared<check_state<beast::ssl_stream<beast::tcp_stream>>>(asio::make_strand(ioc), tls);
    st->stream.set_verify_mode(asio::ssl::verify_peer);
    st->stream.set_verify_callback(asio::ssl::host_name_verification(b->endpoint.address().to_string()));
    beast::get_lowest_layer(st->stream).expires_after(deadline);
    beast::get_lowest_layer(st->stream).async_connect(b->endpoint, [self = shared_from_this(), b, st](beast::error_code ec) {
      if (ec) return self->checked(b, "connect: " + ec.message());
      st->stream.async_handshake(asio::ssl::stream_base::client, [self, b, st](beast::error_code ec2) {
        if (ec2) return self->checked(b, "TLS handshake: " + ec2.message());
        self->request_health(b, st);
      });
    });
  }

  void checked(const std::shared_ptr<backend>& b, const std::string& failure) {
    if (b->removed) return;
    if (!failure.empty()) b->health_failures->Increment();
    mark(*b, failure.empty(), "health check failed: " + failure);
    schedule_check(b, opts.health_interval);
  }

  // --- accepting ------------------------------------------------------------------------------
  void accept();
  void register_session(const std::shared_ptr<session>& s);
  void unregister_session(session* s);

  balancer_options opts;
  std::shared_ptr<prometheus::Registry> metrics;
  std::shared_ptr<spdlog::logger> logger;
  asio::io_context ioc;
  tcp::acceptor acceptor;
  asio::ssl::context tls;
  std::vector<std::thread> threads;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::atomic<bool> started{false};
  std::atomic<bool> stopping{false};

  mutable std::mutex mutex;  // list, next
  std::vector<std::shared_ptr<backend>> list;
  std::size_t next = 0;

  mutable std::mutex sessions_mutex;
  std::condition_variable sessions_gone;
  std::map<session*, std::weak_ptr<session>> sessions;

  prometheus::Family<prometheus::Gauge>& up_family;
  prometheus::Family<prometheus::Gauge>& connections_family;
  prometheus::Family<prometheus::Counter>& connections_total_family;
  prometheus::Family<prometheus::Counter>& failures_family;
  prometheus::Family<prometheus::Counter>& health_failures_family;
  prometheus::Counter& refused_clients;
};

// A kernel pipe between two sockets: what splice(2) moves bytes through.
struct relay_pipe {
  int read_end = -1;
  int write_end = -1;
  std::size_t capacity = 0;
  std::size_t in_pipe = 0;  // bytes read from one socket, not yet written to the other

  // nullopt, or why the pipe could not be made (out of descriptors, say).
  std::optional<std::string> open(std::size_t wanted) {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return std::string("pipe2: ") + std::strerror(errno);
    read_end = fds[0];
    write_end = fds[1];
    // A larger pipe moves more per call; the kernel may refuse (pipe-max-size), then the
    // default (64 KiB) stays.
    const int size = ::fcntl(write_end, F_SETPIPE_SZ, static_cast<int>(wanted));
    capacity = size > 0 ? static_cast<std::size_t>(size) : std::size_t{65536};
    return std::nullopt;
  }
  ~relay_pipe() {
    if (read_end >= 0) ::close(read_end);
    if (write_end >= 0) ::close(write_end);
  }
};

// One client connection and the master connection it is relayed to. Every handler runs on
// the client socket's strand.
struct session : std::enable_shared_from_this<session> {
  using impl = node_balancer::impl;

  session(std::shared_ptr<impl> o, tcp::socket c)
      : owner(std::move(o)),
        client(std::move(c)),
        upstream(client.get_executor()),
        timer(client.get_executor()) {}

  ~session() { owner->unregister_session(this); }

  void connect_next() {
    if (closed) return;
    chosen = owner->pick(tried);
    if (!chosen) {
      owner->refused_clients.Increment();
      owner->logger->warn("balancer: no master took a connection (tried {})", tried.size());
      return close();
    }
    tried.push_back(chosen.get());
    counted = true;
    boost::system::error_code ignored;
    upstream.close(ignored);
    upstream = tcp::socket(client.get_executor());
    timed_out = false;
    timer.expires_after(owner->opts.connect_timeout);
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec) return;
      self->timed_out = true;
      boost::system::error_code ignore;
      self->upstream.close(ignore);
    });
    upstream.async_connect(chosen->endpoint, [self = shared_from_this()](boost::system::error_code ec) {
      self->timer.cancel();
      if (self->closed) return;  // close() uncounted it
      if (ec) {
        self->counted = false;
        const std::string why = self->timed_out ? "connect timed out after " +
                                                      std::to_string(self->owner->opts.connect_timeout.count()) + " ms"
                                                : "connect: " + ec.message();
        self->chosen->connect_failures++;
        self->chosen->failures->Increment();
        self->chosen->active--;
        self->chosen->connections->Decrement();
        self->owner->mark(*self->chosen, false, why);
        return self->connect_next();
      }
      self->relaying();
    });
  }

  void relaying() {
    chosen->total++;
    chosen->connections_total->Increment();
    boost::system::error_code ignored;
    upstream.set_option(tcp::no_delay(true), ignored);
    client.set_option(tcp::no_delay(true), ignored);
    for (auto* d : {&to_upstream, &to_client}) {
      if (auto why = d->open(owner->opts.pipe_bytes)) {
        owner->logger->warn("balancer: cannot relay a connection: {}", *why);
        return close();
      }
    }
    client.non_blocking(true, ignored);
    upstream.non_blocking(true, ignored);
    last_activity = steady::now();
    arm_idle(owner->opts.idle_timeout);
    pump(client, upstream, to_upstream);
    pump(upstream, client, to_client);
  }

  void arm_idle(std::chrono::steady_clock::duration after) {
    timer.expires_after(after);
    timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->closed) return;
      const auto quiet = steady::now() - self->last_activity;
      if (quiet >= self->owner->opts.idle_timeout) return self->close();
      self->arm_idle(self->owner->opts.idle_timeout - quiet);
    });
  }

  // Pumps again once `socket` is ready for `what`.
  void pump_when(tcp::socket& socket, tcp::socket::wait_type what, tcp::socket& from, tcp::socket& to,
                 relay_pipe& pipe) {
    socket.async_wait(what, [self = shared_from_this(), &from, &to, &pipe](boost::system::error_code ec) {
      if (ec) return self->close();
      self->pump(from, to, pipe);
    });
  }

  // One direction of the relay: socket -> pipe -> socket with splice(2), so the bytes never
  // enter user space. Reads only when the pipe is empty, so a slow reader on `to` stops the
  // reads from `from` (backpressure) with at most one pipe's worth in flight. After a burst of
  // work the direction yields to the other connections on this thread.
  void pump(tcp::socket& from, tcp::socket& to, relay_pipe& pipe) {
    for (int round = 0; round < 16; ++round) {
      if (closed) return;
      if (pipe.in_pipe == 0) {
        const ssize_t n = ::splice(from.native_handle(), nullptr, pipe.write_end, nullptr, pipe.capacity,
                                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n == 0) {  // end of stream: the half-close goes on, the other direction may run on
          boost::system::error_code ignore;
          to.shutdown(tcp::socket::shutdown_send, ignore);
          if (--open_directions == 0) close();
          return;
        }
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno != EAGAIN) return close();
          return pump_when(from, tcp::socket::wait_read, from, to, pipe);
        }
        pipe.in_pipe = static_cast<std::size_t>(n);
        last_activity = steady::now();
      }
      while (pipe.in_pipe > 0) {
        const ssize_t n = ::splice(pipe.read_end, nullptr, to.native_handle(), nullptr, pipe.in_pipe,
                                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno != EAGAIN) return close();
          return pump_when(to, tcp::socket::wait_write, from, to, pipe);
        }
        pipe.in_pipe -= static_cast<std::size_t>(n);
      }
    }
    asio::post(client.get_executor(), [self = shared_from_this(), &from, &to, &pipe] { self->pump(from, to, pipe); });
  }

  void close() {
    if (closed) return;
    closed = true;
    boost::system::error_code ignored;
    timer.cancel();
    client.close(ignored);
    upstream.close(ignored);
    if (counted) {
      counted = false;
      chosen->active--;
      chosen->connections->Decrement();
    }
  }

  std::shared_ptr<impl> owner;
  tcp::socket client;
  tcp::socket upstream;
  asio::steady_timer timer;
  relay_pipe to_upstream, to_client;
  std::shared_ptr<backend> chosen;
  std::vector<backend*> tried;
  steady::time_point last_activity;
  int open_directions = 2;
  bool timed_out = false;
  bool counted = false;  // chosen->active includes this connection
  bool closed = false;
};

void node_balancer::impl::register_session(const std::shared_ptr<session>& s) {
  std::lock_guard lock(sessions_mutex);
  sessions.emplace(s.get(), s);
}

void node_balancer::impl::unregister_session(session* s) {
  std::lock_guard lock(sessions_mutex);
  sessions.erase(s);
  if (sessions.empty()) sessions_gone.notify_all();
}

void node_balancer::impl::accept() {
  acceptor.async_accept(asio::make_strand(ioc), [self = shared_from_this()](boost::system::error_code ec, tcp::socket socket) {
    if (self->stopping) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      // Out of descriptors and the like: say so, and keep accepting after a breath.
      self->logger->warn("balancer: accept: {}", ec.message());
      auto t = std::make_shared<asio::steady_timer>(self->ioc, std::chrono::milliseconds(100));
      t->async_wait([self, t](boost::system::error_code) { self->accept(); });
      return;
    }
    std::size_t count = 0;
    {
      std::lock_guard lock(self->sessions_mutex);
      count = self->sessions.size();
    }
    if (count >= self->opts.max_connections) {
      self->refused_clients.Increment();
      boost::system::error_code ignore;
      socket.close(ignore);
    } else {
      auto s = std::make_shared<session>(self, std::move(socket));
      self->register_session(s);
      asio::dispatch(s->client.get_executor(), [s] { s->connect_next(); });
    }
    self->accept();
  });
}

// --- node_balancer ----------------------------------------------------------------------------

node_balancer::node_balancer(balancer_options options, std::shared_ptr<prometheus::Registry> metrics,
                             std::shared_ptr<spdlog::logger> logger)
    : impl_(std::make_shared<impl>(std::move(options), std::move(metrics), std::move(logger))) {}

node_balancer::~node_balancer() { stop(std::chrono::milliseconds(0)); }

util::status node_balancer::start() {
  auto& d = *impl_;
  if (d.opts.health_ca_file) {
    boost::system::error_code ec;
    d.tls.load_verify_file(d.opts.health_ca_file->string(), ec);
    if (ec) return util::error{"balancer: cannot load the CA " + d.opts.health_ca_file->string() + ": " + ec.message()};
  }
  boost::system::error_code ec;
  const auto ip = asio::ip::make_address(d.opts.address, ec);
  if (ec) return util::error{"balancer: " + d.opts.address + " is not an IP address"};
  const tcp::endpoint ep(ip, d.opts.port);
  d.acceptor.open(ep.protocol(), ec);
  if (!ec) d.acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) d.acceptor.bind(ep, ec);
  if (!ec) d.acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return util::error{"balancer: cannot listen on " + d.opts.address + ":" + std::to_string(d.opts.port) + ": " + ec.message()};
  d.started = true;
  d.work.emplace(asio::make_work_guard(d.ioc));
  set_backends(d.opts.backends);
  d.accept();
  const std::size_t n = std::max<std::size_t>(1, d.opts.io_threads);
  for (std::size_t i = 0; i < n; ++i) d.threads.emplace_back([&d] { d.ioc.run(); });
  d.logger->info("balancer: listening on {}:{} over {} master(s)", d.opts.address, port(), d.list.size());
  return util::ok();
}

std::uint16_t node_balancer::port() const {
  boost::system::error_code ec;
  const auto ep = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void node_balancer::set_backends(const std::vector<std::string>& backends) {
  auto& d = *impl_;
  std::vector<std::shared_ptr<backend>> next;
  std::vector<std::shared_ptr<backend>> added;
  {
    std::lock_guard lock(d.mutex);
    for (const auto& address : backends) {
      auto ep = parse_endpoint(address);
      if (!ep) {
        d.logger->error("balancer: master {} ignored: {}", address, ep.error_message());
        continue;
      }
      auto it = std::find_if(d.list.begin(), d.list.end(), [&](const auto& b) { return b->address == address; });
      if (it != d.list.end()) {
        next.push_back(*it);
      } else if (std::none_of(next.begin(), next.end(), [&](const auto& b) { return b->address == address; })) {
        next.push_back(d.make_backend(address, *ep));
        added.push_back(next.back());
      }
    }
    for (const auto& b : d.list) {
      if (std::find(next.begin(), next.end(), b) != next.end()) continue;
      b->removed = true;
      asio::post(d.ioc, [b] { b->check_timer->cancel(); });
      // Its series stay (connections still relayed count on them); it is simply not up.
      b->up->Set(0);
      d.logger->info("balancer: master {} removed ({} connection(s) run on)", b->address, b->active.load());
    }
    d.list = std::move(next);
  }
  if (!d.started) return;  // start() checks them all
  for (const auto& b : added) {
    asio::post(d.ioc, [self = impl_, b] { self->check(b); });
  }
}

std::vector<backend_status> node_balancer::backends() const {
  std::lock_guard lock(impl_->mutex);
  std::vector<backend_status> out;
  for (const auto& b : impl_->list) {
    backend_status s;
    s.address = b->address;
    s.healthy = b->healthy;
    s.active = b->active;
    s.total = b->total;
    s.connect_failures = b->connect_failures;
    std::lock_guard f(b->failure_mutex);
    s.last_failure = b->last_failure;
    out.push_back(std::move(s));
  }
  return out;
}

std::size_t node_balancer::active_connections() const {
  std::lock_guard lock(impl_->sessions_mutex);
  return impl_->sessions.size();
}

void node_balancer::stop(std::chrono::milliseconds drain) {
  auto& d = *impl_;
  if (d.stopping.exchange(true)) return;
  if (!d.started) return;
  asio::post(d.ioc, [self = impl_] {
    boost::system::error_code ignored;
    self->acceptor.close(ignored);
    std::lock_guard lock(self->mutex);
    for (const auto& b : self->list) b->check_timer->cancel();
  });
  // The sessions still open after the drain are closed on their strands. They are collected
  // under the lock and released after it: the last reference to a session may be one of these
  // (its handlers done meanwhile), and its destructor takes sessions_mutex.
  std::vector<std::shared_ptr<session>> remaining;
  {
    std::unique_lock lock(d.sessions_mutex);
    if (!d.sessions.empty()) {
      d.logger->info("balancer: draining {} connection(s) for up to {} ms", d.sessions.size(), drain.count());
    }
    d.sessions_gone.wait_for(lock, drain, [&d] { return d.sessions.empty(); });
    for (auto& [raw, weak] : d.sessions) {
      if (auto s = weak.lock()) remaining.push_back(std::move(s));
    }
  }
  for (const auto& s : remaining) asio::post(s->client.get_executor(), [s] { s->close(); });
  remaining.clear();
  {
    std::unique_lock lock(d.sessions_mutex);
    d.sessions_gone.wait_for(lock, std::chrono::seconds(5), [&d] { return d.sessions.empty(); });
  }
  // Every socket is closed and every timer cancelled: the threads end when the last handler
  // (a health check, bounded by its timeout) has run, and nothing keeps a handler queued.
  d.work.reset();
  for (auto& t : d.threads) {
    if (t.joinable()) t.join();
  }
  d.threads.clear();
}

}  // namespace registryd::balancer
