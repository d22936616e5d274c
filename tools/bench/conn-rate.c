// New-connection rate and first-packet latency through a load balancer, for the data-plane benchmark
// (tools/bench/dataplane.mjs compiles this with `gcc -O2` into a temporary directory at run time).
//
//   conn-rate server ADDRESS PORT
//       Listens on ADDRESS:PORT ("::" takes IPv4 and IPv6), accepts and closes every connection at once,
//       prints "ready" when listening and exits when its stdin closes (so it never outlives its parent).
//
//   conn-rate client VIP PORT SOURCES FIRST_PORT PORT_COUNT START COUNT CONCURRENCY TIMEOUT_MS DURATION_MS
//       Opens COUNT new TCP connections to VIP:PORT, CONCURRENCY at a time (non-blocking connect + epoll),
//       or fewer when DURATION_MS runs out first (no connection starts later; slow rulesets stay quick),
//       resets each one (SO_LINGER {1, 0}: RST, no TIME_WAIT) as soon as it is established, and prints one
//       JSON line: attempted, connected, failed, timedOut (given up after TIMEOUT_MS), seconds (wall),
//       cpuSeconds (this process, kernel work done in its context included), rate (connected per second), the
//       connect()-to-established latency (p50, p90, p99, max in microseconds) of the connected ones.
//
// Every connection must be a new conntrack flow in the load balancer: a SYN that matches a live conntrack
// entry reuses its NAT binding and never reaches the NAT rules under test. So the client never lets the
// kernel pick a source port. Connection i uses tuple number t = START + i, which is source port
// FIRST_PORT + t % PORT_COUNT on source address SOURCES[t / PORT_COUNT] (SOURCES is a comma-separated
// list of the client's own addresses). The caller advances START by COUNT after each run, so no
// (source address, source port) pair repeats while its namespaces exist. Ports are walked before
// addresses so that one run keeps its source ports distinct and the load balancer's masquerade can keep
// them unchanged instead of searching for free ones.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SOURCES 256
#define MAX_CONCURRENCY 4096

static _Noreturn void die(const char *what) {
  fprintf(stderr, "conn-rate: %s: %s\n", what, strerror(errno));
  exit(1);
}

static _Noreturn void usage(void) {
  fprintf(stderr,
          "usage: conn-rate server ADDRESS PORT\n"
          "       conn-rate client VIP PORT SOURCES FIRST_PORT PORT_COUNT START COUNT CONCURRENCY TIMEOUT_MS "
          "DURATION_MS\n");
  exit(2);
}

static long parse_number(const char *text, long min, long max, const char *name) {
  char *end;
  errno = 0;
  long value = strtol(text, &end, 10);
  if (errno != 0 || *end != '\0' || end == text || value < min || value > max) {
    fprintf(stderr, "conn-rate: %s must be an integer in [%ld, %ld], got '%s'\n", name, min, max, text);
    exit(2);
  }
  return value;
}

// Fills ADDRESS (IPv6 or IPv4, by the text's form) with PORT; returns its length.
static socklen_t parse_address(const char *text, uint16_t port, struct sockaddr_storage *address) {
  memset(address, 0, sizeof *address);
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)address;
  struct sockaddr_in *v4 = (struct sockaddr_in *)address;
  if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    return sizeof *v6;
  }
  if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    return sizeof *v4;
  }
  fprintf(stderr, "conn-rate: not an IP address: '%s'\n", text);
  exit(2);
}

static void set_port(struct sockaddr_storage *address, uint16_t port) {
  if (address->ss_family == AF_INET6)
    ((struct sockaddr_in6 *)address)->sin6_port = htons(port);
  else
    ((struct sockaddr_in *)address)->sin_port = htons(port);
}

static uint64_t clock_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

static int run_server(const char *address_text, uint16_t port) {
  struct sockaddr_storage address;
  socklen_t length = parse_address(address_text, port, &address);
  int listener = socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (listener < 0) die("socket");
  int one = 1, zero = 0;
  if (setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) die("SO_REUSEADDR");
  // "::" should also take IPv4 (mapped addresses), whatever net.ipv6.bindv6only says.
  if (address.ss_family == AF_INET6 && setsockopt(listener, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero) < 0)
    die("IPV6_V6ONLY");
  if (bind(listener, (struct sockaddr *)&address, length) < 0) die("bind");
  // The kernel caps the backlog at net.core.somaxconn; a full accept queue would drop SYNs and turn a
  // connection into a one-second retransmission, so ask for as much as allowed.
  if (listen(listener, 65535) < 0) die("listen");
  printf("ready\n");
  fflush(stdout);

  struct pollfd fds[2] = {{.fd = listener, .events = POLLIN}, {.fd = STDIN_FILENO, .events = POLLIN}};
  for (;;) {
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    if (fds[1].revents) {
      char buffer[64];
      ssize_t got = read(STDIN_FILENO, buffer, sizeof buffer);
      if (got <= 0) return 0;  // The parent closed our stdin (or died): stop.
    }
    if (fds[0].revents & POLLIN) {
      // Drain the accept queue; each connection is closed at once, which is all the benchmark needs.
      for (;;) {
        int connection = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (connection < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNABORTED || errno == EINTR) break;
          die("accept");
        }
        close(connection);
      }
    }
  }
}

struct slot {
  int fd;  // -1 when free
  uint64_t started_ns;
};

static int compare_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return (x > y) - (x < y);
}

static uint32_t percentile(const uint32_t *sorted, long count, double p) {
  if (count == 0) return 0;
  long index = (long)(p * (double)(count - 1) + 0.5);
  return sorted[index];
}

// Closes with an RST: no TIME_WAIT on the client, and the conntrack entry goes straight to CLOSE.
static void reset_and_close(int fd) {
  struct linger linger = {.l_onoff = 1, .l_linger = 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof linger);
  close(fd);
}

// The client's state: the tuple plan, the connections in flight and what happened to the finished ones.
struct client {
  struct sockaddr_storage vip;
  socklen_t vip_length;
  struct sockaddr_storage sources[MAX_SOURCES];
  socklen_t source_lengths[MAX_SOURCES];
  long source_count, first_port, port_count, start, count;
  uint64_t stop_starting_ns;  // no connection starts after this (CLOCK_MONOTONIC)
  int epoll;
  struct slot slots[MAX_CONCURRENCY];
  long next, in_flight, connected, failed, timed_out;
  uint32_t *latencies_us;  // one per connected connection
};

// Starts the client's next connection in slot SLOT_INDEX. Returns 1 when it is in flight, 0 when connect()
// already finished (a success or a failure) and the slot is still free.
static int open_one(struct client *c, long slot_index) {
  long tuple = c->start + c->next++;
  long source_index = tuple / c->port_count;
  struct sockaddr_storage *source = &c->sources[source_index];
  set_port(source, (uint16_t)(c->first_port + tuple % c->port_count));
  int fd = socket(c->vip.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  // An explicit source port: EADDRINUSE here would mean a tuple was reused, which must not happen.
  if (bind(fd, (struct sockaddr *)source, c->source_lengths[source_index]) < 0) die("bind source");
  uint64_t started = now_ns();
  if (connect(fd, (struct sockaddr *)&c->vip, c->vip_length) == 0) {
    c->latencies_us[c->connected++] = (uint32_t)((now_ns() - started) / 1000);
    reset_and_close(fd);
    return 0;
  }
  if (errno != EINPROGRESS) {
    c->failed++;
    close(fd);
    return 0;
  }
  struct epoll_event event = {.events = EPOLLOUT, .data.u64 = (uint64_t)slot_index};
  if (epoll_ctl(c->epoll, EPOLL_CTL_ADD, fd, &event) < 0) die("epoll_ctl");
  c->slots[slot_index] = (struct slot){.fd = fd, .started_ns = started};
  c->in_flight++;
  return 1;
}

// Fills a free slot until one connection is really in flight, or none are left to start, or time is up.
static void refill(struct client *c, long slot_index) {
  while (c->next < c->count && now_ns() < c->stop_starting_ns && !open_one(c, slot_index)) {
  }
}

static int run_client(char **argv) {
  static struct client c;  // static: the slot and source arrays are too big for the stack
  uint16_t port = (uint16_t)parse_number(argv[1], 1, 65535, "PORT");
  c.vip_length = parse_address(argv[0], port, &c.vip);
  c.first_port = parse_number(argv[3], 1, 65535, "FIRST_PORT");
  c.port_count = parse_number(argv[4], 1, 65536 - c.first_port, "PORT_COUNT");
  c.start = parse_number(argv[5], 0, 1L << 40, "START");
  c.count = parse_number(argv[6], 1, 100000000, "COUNT");
  long concurrency = parse_number(argv[7], 1, MAX_CONCURRENCY, "CONCURRENCY");
  uint64_t timeout_ns = (uint64_t)parse_number(argv[8], 1, 600000, "TIMEOUT_MS") * 1000000u;
  uint64_t duration_ns = (uint64_t)parse_number(argv[9], 1, 3600000, "DURATION_MS") * 1000000u;
  for (char *token = strtok(argv[2], ","); token; token = strtok(NULL, ",")) {
    if (c.source_count == MAX_SOURCES) {
      fprintf(stderr, "conn-rate: at most %d source addresses\n", MAX_SOURCES);
      return 2;
    }
    c.source_lengths[c.source_count] = parse_address(token, 0, &c.sources[c.source_count]);
    if (c.sources[c.source_count].ss_family != c.vip.ss_family) {
      fprintf(stderr, "conn-rate: source %s is not of the VIP's address family\n", token);
      return 2;
    }
    c.source_count++;
  }
  if (c.source_count == 0) usage();
  if ((c.start + c.count - 1) / c.port_count >= c.source_count) {
    fprintf(stderr, "conn-rate: tuples %ld..%ld exceed %ld sources x %ld ports\n", c.start,
            c.start + c.count - 1, c.source_count, c.port_count);
    return 2;
  }

  c.epoll = epoll_create1(EPOLL_CLOEXEC);
  if (c.epoll < 0) die("epoll_create1");
  for (long i = 0; i < concurrency; i++) c.slots[i].fd = -1;
  c.latencies_us = malloc(sizeof(uint32_t) * (size_t)c.count);
  if (!c.latencies_us) die("malloc");

  uint64_t began = now_ns();
  c.stop_starting_ns = began + duration_ns;
  uint64_t cpu_began = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
  for (long i = 0; i < concurrency; i++) refill(&c, i);
  static struct epoll_event events[MAX_CONCURRENCY];
  while (c.in_flight > 0) {
    // A short wait so that a connection whose SYN was lost is given up TIMEOUT_MS after it started
    // instead of waiting for the kernel's retransmissions (which would reuse its conntrack entry).
    int ready = epoll_wait(c.epoll, events, (int)concurrency, 10);
    if (ready < 0) {
      if (errno == EINTR) continue;
      die("epoll_wait");
    }
    uint64_t now = now_ns();
    for (int e = 0; e < ready; e++) {
      long slot_index = (long)events[e].data.u64;
      struct slot *slot = &c.slots[slot_index];
      int error = 0;
      socklen_t error_length = sizeof error;
      if (getsockopt(slot->fd, SOL_SOCKET, SO_ERROR, &error, &error_length) < 0) die("SO_ERROR");
      if (error == 0) {
        c.latencies_us[c.connected++] = (uint32_t)((now - slot->started_ns) / 1000);
        reset_and_close(slot->fd);
      } else {
        c.failed++;
        close(slot->fd);
      }
      slot->fd = -1;
      c.in_flight--;
      refill(&c, slot_index);
    }
    // A fresh clock: connections refilled above started after NOW.
    now = now_ns();
    for (long i = 0; i < concurrency; i++) {
      if (c.slots[i].fd >= 0 && now - c.slots[i].started_ns > timeout_ns) {
        reset_and_close(c.slots[i].fd);
        c.slots[i].fd = -1;
        c.in_flight--;
        c.timed_out++;
        refill(&c, i);
      }
    }
  }
  double seconds = (double)(now_ns() - began) / 1e9;
  double cpu_seconds = (double)(clock_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu_began) / 1e9;

  qsort(c.latencies_us, (size_t)c.connected, sizeof *c.latencies_us, compare_u32);
  printf(
      "{\"attempted\":%ld,\"connected\":%ld,\"failed\":%ld,\"timedOut\":%ld,\"seconds\":%.6f,\"cpuSeconds\":%.6f,\"rate\":%.1f,"
      "\"latencyUs\":{\"p50\":%u,\"p90\":%u,\"p99\":%u,\"max\":%u}}\n",
      c.next, c.connected, c.failed, c.timed_out, seconds, cpu_seconds, (double)c.connected / seconds,
      percentile(c.latencies_us, c.connected, 0.50), percentile(c.latencies_us, c.connected, 0.90),
      percentile(c.latencies_us, c.connected, 0.99), percentile(c.latencies_us, c.connected, 1.0));
  free(c.latencies_us);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && strcmp(argv[1], "server") == 0)
    return run_server(argv[2], (uint16_t)parse_number(argv[3], 1, 65535, "PORT"));
  if (argc == 12 && strcmp(argv[1], "client") == 0) return run_client(argv + 2);
  usage();
}
