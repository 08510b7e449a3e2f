/*
 * iothreads.c — an I/O-threaded server in the shape of the Privbox paper's evaluation, with its
 * client, in one process (loopback only: Unix socket pairs).
 *
 *   iothreads CHUNK COMPUTE_US SECONDS [IO_THREADS COMPUTE_THREADS CONNECTIONS]
 *
 * IO threads (default 2) each run epoll over their share of the server ends; a request is 1024
 * bytes, read with recv() in CHUNK-byte pieces; when complete it is queued to the compute threads
 * (default 2), which spin COMPUTE_US microseconds on it and queue it back; the IO thread then
 * sends a 24-byte response in CHUNK-byte pieces (at most 24). A client thread keeps CONNECTIONS
 * (default 20) requests in flight, one per connection, each sent in one write and its response
 * read in one read. Smaller chunks mean more system calls per request.
 *
 * Prints on stdout a line that does not depend on timing ("iothreads: N connections, chunk C,
 * compute U us: responses verified") and on stderr the requests per second over SECONDS.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQUEST 1024
#define RESPONSE 24
#define MAX_CONN 256

struct conn {
    int server_fd, client_fd;
    int received, sent;         /* bytes of the current request / response */
    unsigned char req[REQUEST];
    unsigned char resp[RESPONSE];
    uint32_t seq;
};

static struct conn conns[MAX_CONN];
static int chunk, compute_us, n_io = 2, n_compute = 2, n_conn = 20;
static atomic_int stop;
static atomic_long completed;
static int verify_failed;

/* A queue of connection indexes with a mutex and a condition variable (futex system calls, as in
 * a real server's hand-off). */
struct queue {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    int items[MAX_CONN + 1];
    int head, tail;
};
static struct queue to_compute = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, {0}, 0, 0};
static struct queue to_io[16];
static int io_wake[16][2]; /* a pipe per IO thread: the compute threads' doorbell */

static void push(struct queue *q, int item)
{
    pthread_mutex_lock(&q->lock);
    q->items[q->tail] = item;
    q->tail = (q->tail + 1) % (MAX_CONN + 1);
    pthread_cond_signal(&q->ready);
    pthread_mutex_unlock(&q->lock);
}

static int pop(struct queue *q, int wait)
{
    pthread_mutex_lock(&q->lock);
    while (wait && q->head == q->tail && !atomic_load(&stop))
        pthread_cond_wait(&q->ready, &q->lock);
    int item = -1;
    if (q->head != q->tail) {
        item = q->items[q->head];
        q->head = (q->head + 1) % (MAX_CONN + 1);
    }
    pthread_mutex_unlock(&q->lock);
    return item;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *compute_thread(void *arg)
{
    (void)arg;
    for (;;) {
        int c = pop(&to_compute, 1);
        if (c < 0)
            return 0;
        struct conn *k = &conns[c];
        uint64_t until = now_ns() + (uint64_t)compute_us * 1000u;
        uint32_t sum = 0;
        while (now_ns() < until)
            for (int i = 0; i < REQUEST; i += 64)
                sum += k->req[i];
        memset(k->resp, 0, RESPONSE);
        memcpy(k->resp, &k->seq, sizeof k->seq);
        memcpy(k->resp + 4, k->req, 8);
        (void)sum;
        int io = c % n_io;
        push(&to_io[io], c);
        char b = 1;
        if (write(io_wake[io][1], &b, 1) != 1)
            abort();
    }
}

static void send_response(struct conn *k)
{
    while (k->sent < RESPONSE) {
        int n = RESPONSE - k->sent < chunk ? RESPONSE - k->sent : chunk;
        ssize_t w = send(k->server_fd, k->resp + k->sent, (size_t)n, MSG_NOSIGNAL);
        if (w <= 0)
            abort();
        k->sent += (int)w;
    }
}

static void *io_thread(void *arg)
{
    int me = (int)(intptr_t)arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    epoll_ctl(ep, EPOLL_CTL_ADD, io_wake[me][0], &ev);
    for (int c = me; c < n_conn; c += n_io) {
        ev.data.u32 = (uint32_t)c;
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[c].server_fd, &ev);
    }
    struct epoll_event events[64];
    while (!atomic_load(&stop)) {
        int n = epoll_wait(ep, events, 64, 100);
        for (int i = 0; i < n; i++) {
            if (events[i].data.u32 == UINT32_MAX) {
                char buf[64];
                if (read(io_wake[me][0], buf, sizeof buf) < 0 && errno != EAGAIN)
                    abort();
                int c;
                while ((c = pop(&to_io[me], 0)) >= 0) {
                    conns[c].sent = 0;
                    send_response(&conns[c]);
                }
                continue;
            }
            struct conn *k = &conns[events[i].data.u32];
            int want = REQUEST - k->received < chunk ? REQUEST - k->received : chunk;
            ssize_t r = recv(k->server_fd, k->req + k->received, (size_t)want, 0);
            if (r <= 0)
                continue;
            k->received += (int)r;
            if (k->received == REQUEST) {
                k->received = 0;
                memcpy(&k->seq, k->req, sizeof k->seq);
                push(&to_compute, (int)events[i].data.u32);
            }
        }
    }
    close(ep);
    return 0;
}

static void *client_thread(void *arg)
{
    double seconds = *(double *)arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    unsigned char req[REQUEST], resp[RESPONSE];
    uint32_t seq[MAX_CONN] = {0};
    for (int c = 0; c < n_conn; c++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)c};
        epoll_ctl(ep, EPOLL_CTL_ADD, conns[c].client_fd, &ev);
        memset(req, c, sizeof req);
        memcpy(req, &seq[c], sizeof seq[c]);
        if (write(conns[c].client_fd, req, REQUEST) != REQUEST)
            abort();
    }
    uint64_t end = now_ns() + (uint64_t)(seconds * 1e9);
    struct epoll_event events[64];
    while (now_ns() < end) {
        int n = epoll_wait(ep, events, 64, 100);
        for (int i = 0; i < n; i++) {
            int c = (int)events[i].data.u32;
            ssize_t got = 0;
            while (got < RESPONSE) {
                ssize_t r = read(conns[c].client_fd, resp + got, (size_t)(RESPONSE - got));
                if (r <= 0)
                    abort();
                got += r;
            }
            uint32_t echoed;
            memcpy(&echoed, resp, sizeof echoed);
            if (echoed != seq[c] || resp[4 + 4] != (unsigned char)c)
                verify_failed = 1;
            atomic_fetch_add(&completed, 1);
            seq[c]++;
            memset(req, c, sizeof req);
            memcpy(req, &seq[c], sizeof seq[c]);
            if (write(conns[c].client_fd, req, REQUEST) != REQUEST)
                abort();
        }
    }
    atomic_store(&stop, 1);
    close(ep);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: iothreads CHUNK COMPUTE_US SECONDS [IO_THREADS COMPUTE_THREADS CONNECTIONS]\n");
        return 64;
    }
    chunk = atoi(argv[1]);
    compute_us = atoi(argv[2]);
    double seconds = atof(argv[3]);
    if (argc > 4) n_io = atoi(argv[4]);
    if (argc > 5) n_compute = atoi(argv[5]);
    if (argc > 6) n_conn = atoi(argv[6]);
    if (chunk < 1 || n_io < 1 || n_io > 16 || n_compute < 1 || n_conn < 1 || n_conn > MAX_CONN)
        return 64;
    for (int c = 0; c < n_conn; c++) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
            return 2;
        conns[c].server_fd = sv[0];
        conns[c].client_fd = sv[1];
    }
    for (int i = 0; i < n_io; i++) {
        pthread_mutex_init(&to_io[i].lock, 0);
        pthread_cond_init(&to_io[i].ready, 0);
        if (pipe2(io_wake[i], O_CLOEXEC | O_NONBLOCK) != 0)
            return 2;
    }
    pthread_t io[16], compute[64], client;
    for (int i = 0; i < n_io; i++)
        pthread_create(&io[i], 0, io_thread, (void *)(intptr_t)i);
    for (int i = 0; i < n_compute && i < 64; i++)
        pthread_create(&compute[i], 0, compute_thread, 0);
    uint64_t t0 = now_ns();
    pthread_create(&client, 0, client_thread, &seconds);
    pthread_join(client, 0);
    uint64_t elapsed = now_ns() - t0;
    pthread_mutex_lock(&to_compute.lock);
    pthread_cond_broadcast(&to_compute.ready);
    pthread_mutex_unlock(&to_compute.lock);
    for (int i = 0; i < n_io; i++)
        pthread_join(io[i], 0);
    for (int i = 0; i < n_compute && i < 64; i++)
        pthread_join(compute[i], 0);
    printf("iothreads: %d connections, chunk %d, compute %d us: responses %s\n", n_conn, chunk,
           compute_us, verify_failed ? "WRONG" : "verified");
    /* Integer arithmetic: the harness's own floating point would be part of what it measures. */
    unsigned long long rps = (unsigned long long)atomic_load(&completed) * 1000000000ull / elapsed;
    fprintf(stderr, "%llu\n", rps);
    return verify_failed ? 1 : 0;
}
