/* event.h - a small epoll(7)-based event loop with one-shot timers.
 *
 * Purpose: the many-clients server skeleton and the master wait for
 * descriptors and timers in one place. There is one global loop per
 * process (processes are single-threaded).
 *
 * Interface:
 *   event_add_read(fd, fn, ctx)   call fn(fd, ctx) whenever fd is readable
 *   event_add_write(fd, fn, ctx)  call fn(fd, ctx) whenever fd is writable
 *       Interest stays until removed (level-triggered). Adding again for
 *       the same fd and direction replaces the callback. A hangup or error
 *       on the fd counts as "readable" and "writable", so the callback's
 *       read(2)/write(2) sees EOF or the error.
 *   event_remove_read(fd), event_remove_write(fd), event_remove(fd)
 *       drop interest (one direction, or both); removing what is not
 *       registered is fine. Remove an fd before closing it.
 *   event_timer_add(delay_ms, fn, ctx) -> id
 *       one-shot timer: fn(ctx) runs once, at least delay_ms later
 *       (monotonic clock, millisecond resolution). Timers due at the same
 *       time run in the order they were added. Ids are never reused; 0 is
 *       never an id.
 *   event_timer_cancel(id) -> true if the timer was still pending
 *   event_loop_once(timeout_ms) -> callbacks run
 *       waits at most timeout_ms (< 0: until something happens; 0: just
 *       look), then runs the callbacks of ready fds and then due timers.
 *       Returns 0 after a timeout or when a signal interrupted the wait,
 *       so signal handlers that set flags are noticed promptly.
 *   event_loop_run()    run iterations until event_loop_stop()
 *   event_loop_stop()   make event_loop_run() return after the current
 *       iteration; safe to call from a callback or a signal handler
 *       (called while the loop is not running, it makes the next
 *       event_loop_run() return at once). A signal that arrives just
 *       before epoll_wait(2) is only noticed at the next event: use a
 *       self-pipe for signals that need prompt handling.
 *
 * Callbacks may add and remove fds and timers freely, including their
 * own, during dispatch: a callback removed (or replaced) earlier in the
 * same iteration is not called, and a timer added during dispatch never
 * runs in the same iteration. event_loop_once() must not be called from
 * a callback.
 *
 * Cost: an iteration costs O(ready fds) (epoll), whatever the number
 * registered; each add or remove is one epoll_ctl(2).
 *
 * Diagnostics: msg_panic for bugs (a negative fd); msg_fatal when epoll
 * fails for another reason than EINTR. An fd that is not open when it
 * is registered is never reported. A registered fd closed without its removal (a bug) is simply
 * never reported again (epoll forgets a closed file; poll(2) used to
 * panic here); if its file lives on in another process, its first
 * stale event drops it. */
#ifndef POSTHORN_EVENT_H
#define POSTHORN_EVENT_H

#include <stdbool.h>
#include <stdint.h>

typedef void (*event_fd_fn)(int fd, void *ctx);
typedef void (*event_timer_fn)(void *ctx);
typedef uint64_t event_timer_id;

void event_add_read(int fd, event_fd_fn fn, void *ctx);
void event_add_write(int fd, event_fd_fn fn, void *ctx);
void event_remove_read(int fd);
void event_remove_write(int fd);
/* event_remove - drop read and write interest in fd */
void event_remove(int fd);

event_timer_id event_timer_add(int delay_ms, event_timer_fn fn, void *ctx);
bool event_timer_cancel(event_timer_id id);

int event_loop_once(int timeout_ms);
void event_loop_run(void);
void event_loop_stop(void);

/* event_reset_after_fork - forget every registration and timer (without
 * closing anything) and leave the dispatching state, in a child forked
 * from inside a callback that will run a loop of its own and never
 * return into the parent's one (session_host's workers) */
void event_reset_after_fork(void);

#endif
