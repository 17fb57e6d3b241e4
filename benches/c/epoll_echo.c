/* A minimal edge-triggered epoll echo server: the yardstick the `epoll`
 * style is held against ("as lean as a C server", measured). One thread,
 * accept4 non-blocking, one read and one write per message: a read shorter
 * than the buffer drained the socket and the next arrival raises a new edge,
 * so no read is made to find EAGAIN (after a hang-up it reads on to EOF). A
 * write the peer cannot take yet is kept and finished on EPOLLOUT; nothing is
 * read meanwhile. EOF: send back what is pending, shut the write side, close.
 *
 * usage: epoll_echo PORT   (listens on 127.0.0.1:PORT)
 * On SIGINT/SIGTERM it prints `summary style=c-epoll bytes_echoed=N
 * accept_errors=N` to stderr and exits 0. Build: cc -O2 -o epoll_echo epoll_echo.c */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 16384 /* as `servers --buffer-size`'s default */
#define MAX_EVENTS 1024

struct conn { char *pending; size_t len, off; int readable, hung_up; };
static struct conn *conns;
static size_t nconns;
static unsigned long long echoed, accept_errors;
static char buf[BUF];

static void on_signal(int sig) { (void)sig; }

static void drop(int fd) {
    free(conns[fd].pending);
    memset(&conns[fd], 0, sizeof conns[fd]);
    close(fd); /* also takes it out of the epoll set */
}

static void serve(int fd, unsigned events) {
    struct conn *c = &conns[fd];
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c->readable = 1;
    if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c->hung_up = 1;
    for (;;) {
        while (c->off < c->len) {
            ssize_t w = write(fd, c->pending + c->off, c->len - c->off);
            if (w < 0 && errno == EAGAIN) return; /* EPOLLOUT will call again */
            if (w < 0 && errno == EINTR) continue;
            if (w < 0) { drop(fd); return; }
            c->off += (size_t)w;
            echoed += (unsigned long long)w;
        }
        c->off = c->len = 0;
        if (!c->readable) return;
        ssize_t r = read(fd, buf, BUF);
        if (r < 0 && errno == EAGAIN) { c->readable = 0; return; }
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) { drop(fd); return; }
        if (r == 0) { shutdown(fd, SHUT_WR); drop(fd); return; }
        if (r < BUF && !c->hung_up) c->readable = 0; /* drained: wait for the next edge */
        ssize_t w = write(fd, buf, (size_t)r);
        if (w < 0 && errno != EAGAIN && errno != EINTR) { drop(fd); return; }
        if (w < 0) w = 0;
        echoed += (unsigned long long)w;
        if (w < r) { /* keep the rest for EPOLLOUT */
            if (!c->pending && !(c->pending = malloc(BUF))) { drop(fd); return; }
            memcpy(c->pending, buf + w, (size_t)(r - w));
            c->len = (size_t)(r - w);
        }
    }
}

static void accept_all(int ep, int lfd) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0 && (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)) continue;
        if (fd < 0 && errno != EAGAIN) accept_errors++; /* EMFILE and the like: try at the next edge */
        if (fd < 0) return;
        if ((size_t)fd >= nconns) {
            size_t n = (size_t)fd * 2 + 64;
            struct conn *grown = realloc(conns, n * sizeof *conns);
            if (!grown) { close(fd); continue; }
            memset(grown + nconns, 0, (n - nconns) * sizeof *conns);
            conns = grown, nconns = n;
        }
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) close(fd);
    }
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s PORT\n", argv[0]); return 2; }
    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0) { lim.rlim_cur = lim.rlim_max; setrlimit(RLIMIT_NOFILE, &lim); }
    /* SIGINT/SIGTERM are blocked except inside epoll_pwait, so a stop is never missed. */
    sigset_t stop, none;
    sigemptyset(&stop); sigaddset(&stop, SIGINT); sigaddset(&stop, SIGTERM); sigemptyset(&none);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL); sigaction(SIGTERM, &sa, NULL);
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1]))};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 1024) < 0) {
        perror("listen"); return 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN | EPOLLET, .data.fd = lfd}, evs[MAX_EVENTS];
    if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) { perror("epoll"); return 1; }
    printf("listening on 127.0.0.1:%s pid=%d\n", argv[1], (int)getpid());
    fflush(stdout);
    for (;;) {
        int n = epoll_pwait(ep, evs, MAX_EVENTS, -1, &none);
        if (n < 0 && errno == EINTR) break; /* the only signals let in are the stops */
        if (n < 0) { perror("epoll_wait"); return 1; }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.fd == lfd) accept_all(ep, lfd);
            else serve(evs[i].data.fd, evs[i].events);
        }
    }
    fprintf(stderr, "summary style=c-epoll bytes_echoed=%llu accept_errors=%llu\n", echoed, accept_errors);
    return 0;
}
