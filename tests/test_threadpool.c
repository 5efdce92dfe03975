/*
 * The thread pool (threadpool.c): every task runs once, on a worker of the
 * pool, whatever the pool's size and the number of tasks; the caller sees
 * every task's writes when l2_pool_run returns; tasks really run at once,
 * also after the workers have gone to sleep; slow workers are waited for;
 * pools are created and destroyed many times over.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "llama2.h"
#include "platform/platform.h"
#include "support.h"
#include "platform/threadpool.h"

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    assert_non_null(p);
    return p;
}

#define POOL_MAX_TASKS 101

typedef struct count_ctx {
    _Atomic int runs[POOL_MAX_TASKS];
    _Atomic int bad_worker;
    int n_workers;
} count_ctx;

static void count_task(void *p, int task, int worker) {
    count_ctx *c = p;
    if (task < 0 || task >= POOL_MAX_TASKS || worker < 0 || worker >= c->n_workers) {
        atomic_fetch_add(&c->bad_worker, 1);
        return;
    }
    atomic_fetch_add_explicit(&c->runs[task], 1, memory_order_relaxed);
}

static void check_counts(count_ctx *c, int n_tasks) {
    for (int t = 0; t < POOL_MAX_TASKS; t++) {
        int v = atomic_load(&c->runs[t]);
        int want = t < n_tasks ? 1 : 0;
        if (v != want) {
            print_error("pool of %d, %d tasks: task %d ran %d times\n", c->n_workers, n_tasks, t, v);
            fail();
        }
        atomic_store_explicit(&c->runs[t], 0, memory_order_relaxed);
    }
    assert_int_equal(atomic_load(&c->bad_worker), 0);
}

static void test_pool_every_task_once(void **state) {
    (void)state;
    static count_ctx c;
    for (int size = 1; size <= 4; size++) {
        llama2_threadpool *pool = NULL;
        llama2_error err;
        assert_int_equal(llama2_threadpool_create(size, &pool, &err), LLAMA2_OK);
        assert_int_equal(llama2_threadpool_size(pool), size);
        c.n_workers = size;
        for (int n = 0; n < POOL_MAX_TASKS; n++) {
            l2_pool_run(pool, n, count_task, &c);
            check_counts(&c, n);
        }
        /* Many calls back to back, as in a forward pass. */
        for (int rep = 0; rep < 10000; rep++) {
            int n = rep % POOL_MAX_TASKS;
            l2_pool_run(pool, n, count_task, &c);
            check_counts(&c, n);
        }
        llama2_threadpool_destroy(pool);
    }
    /* Without a pool: in order, on worker 0. */
    c.n_workers = 1;
    l2_pool_run(NULL, 37, count_task, &c);
    check_counts(&c, 37);
}

/* Tasks that write disjoint slices of an array: the caller must see every
 * write when l2_pool_run returns. */
typedef struct fill_ctx {
    int *data;
    int per_task;
    int round;
} fill_ctx;

static void fill_task(void *p, int task, int worker) {
    (void)worker;
    fill_ctx *f = p;
    for (int i = 0; i < f->per_task; i++) f->data[task * f->per_task + i] = f->round + task;
}

static void test_pool_results_visible(void **state) {
    (void)state;
    llama2_threadpool *pool = NULL;
    assert_int_equal(llama2_threadpool_create(3, &pool, NULL), LLAMA2_OK);
    fill_ctx f = {xmalloc(64 * 50 * sizeof(int)), 50, 0};
    for (int round = 0; round < 3000; round++) {
        f.round = round;
        int n = 1 + round % 64;
        l2_pool_run(pool, n, fill_task, &f);
        for (int i = 0; i < n * f.per_task; i++) {
            if (f.data[i] != round + i / f.per_task) {
                print_error("round %d: element %d is %d\n", round, i, f.data[i]);
                fail();
            }
        }
    }
    free(f.data);
    llama2_threadpool_destroy(pool);
}

/* Two tasks that each wait for the other to start: this finishes only if
 * two threads really run tasks at once, here after the workers have gone to
 * sleep (so it also checks that a sleeping pool wakes up). */
typedef struct meet_ctx {
    _Atomic int arrived;
    _Atomic int timed_out;
} meet_ctx;

static double now_s(void) { return 1e-9 * (double)l2_monotonic_ns(); }

static void meet_task(void *p, int task, int worker) {
    (void)task;
    (void)worker;
    meet_ctx *m = p;
    atomic_fetch_add(&m->arrived, 1);
    double start = now_s();
    while (atomic_load(&m->arrived) < 2) {
        if (now_s() - start > 20.0) {
            atomic_store(&m->timed_out, 1);
            return;
        }
    }
}

static void test_pool_concurrent_and_wakes(void **state) {
    (void)state;
    for (int size = 2; size <= 4; size++) {
        llama2_threadpool *pool = NULL;
        assert_int_equal(llama2_threadpool_create(size, &pool, NULL), LLAMA2_OK);
        for (int rep = 0; rep < 3; rep++) {
            test_sleep_us(rep == 0 ? 1000 : 50000); /* long enough for the workers to sleep */
            meet_ctx m;
            atomic_init(&m.arrived, 0);
            atomic_init(&m.timed_out, 0);
            l2_pool_run(pool, 2, meet_task, &m);
            assert_int_equal(atomic_load(&m.arrived), 2);
            assert_int_equal(atomic_load(&m.timed_out), 0);
        }
        llama2_threadpool_destroy(pool);
    }
}

/* Tasks that take long when a worker (not the caller) runs them: the
 * caller, done with its own, waits well past any spin for the last ones and
 * must then see every task's write. */
typedef struct slow_ctx {
    count_ctx counts;
    int *data;
    int round;
} slow_ctx;

static void slow_task(void *p, int task, int worker) {
    slow_ctx *c = p;
    test_sleep_us(worker != 0 ? 300 : 20); /* the caller's are short, not instant: the workers get some */
    c->data[task] = c->round + task;
    count_task(&c->counts, task, worker);
}

static void test_pool_slow_workers(void **state) {
    (void)state;
    static slow_ctx c;
    int data[POOL_MAX_TASKS];
    c.data = data;
    for (int size = 2; size <= 4; size++) {
        llama2_threadpool *pool = NULL;
        assert_int_equal(llama2_threadpool_create(size, &pool, NULL), LLAMA2_OK);
        c.counts.n_workers = size;
        for (int round = 0; round < 60; round++) {
            int n = 2 + round % 20;
            c.round = round;
            l2_pool_run(pool, n, slow_task, &c);
            check_counts(&c.counts, n);
            for (int t = 0; t < n; t++) {
                if (data[t] != round + t) {
                    print_error("pool of %d, round %d: task %d's write is not visible\n", size, round, t);
                    fail();
                }
            }
        }
        llama2_threadpool_destroy(pool);
    }
}

static void test_pool_create_destroy(void **state) {
    (void)state;
    static count_ctx c;
    for (int cycle = 0; cycle < 300; cycle++) {
        int size = 1 + cycle % 4;
        llama2_threadpool *pool = NULL;
        assert_int_equal(llama2_threadpool_create(size, &pool, NULL), LLAMA2_OK);
        c.n_workers = size;
        int n = cycle % 3 == 0 ? 0 : 1 + cycle % 40;
        if (cycle % 2 == 0) {
            l2_pool_run(pool, n, count_task, &c);
            check_counts(&c, n);
        }
        llama2_threadpool_destroy(pool);
    }
    /* n <= 0: one thread per online processor. */
    llama2_threadpool *pool = NULL;
    assert_int_equal(llama2_threadpool_create(0, &pool, NULL), LLAMA2_OK);
    assert_int_equal(llama2_threadpool_size(pool), l2_processor_count());
    c.n_workers = llama2_threadpool_size(pool);
    l2_pool_run(pool, 50, count_task, &c);
    check_counts(&c, 50);
    llama2_threadpool_destroy(pool);
    llama2_threadpool_destroy(NULL);
    assert_int_equal(llama2_threadpool_size(NULL), 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_every_task_once),
        cmocka_unit_test(test_pool_results_visible),
        cmocka_unit_test(test_pool_concurrent_and_wakes),
        cmocka_unit_test(test_pool_slow_workers),
        cmocka_unit_test(test_pool_create_destroy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
