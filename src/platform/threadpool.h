/* The persistent thread pool's internal interface (the public handle is
 * llama2_threadpool in llama2.h). */
#ifndef LLAMA2_THREADPOOL_H
#define LLAMA2_THREADPOOL_H

#include "llama2.h"

/* fn(ctx, task, worker) for every task in [0, n_tasks), spread over the
 * pool's workers; worker is in [0, pool size) and identifies per-worker
 * scratch. Returns when all tasks are done. A NULL pool runs them in order on
 * the calling thread as worker 0. */
typedef void (*l2_task_fn)(void *ctx, int task, int worker);
void l2_pool_run(llama2_threadpool *pool, int n_tasks, l2_task_fn fn, void *ctx);

#endif
