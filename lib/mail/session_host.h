/* session_host.h - the post-login half of the login split, shared by
 * pop3d and imapd: take hand-overs from the login processes, learn the
 * user by redeeming the token with auth, and run the sessions in
 * long-lived per-uid worker processes, each serving many sessions on
 * one event loop.
 *
 * Processes (docs/login-split.md has the trust argument):
 *   dispatcher  the master-spawned pop3d/imapd (root; MULTI, one
 *               process). Accepts login hand-overs (login_proto.h),
 *               redeems each token with auth over a pooled connection
 *               (never trusts the login process's word), then passes
 *               {client fd, user, mail root, uid, gid, quota, client
 *               address, pipelined input} to the worker for (uid, gid),
 *               forking one (which drops to uid/gid for good, no
 *               supplementary groups) if there is none or all are full.
 *               It parses nothing but the bounded hand-over and auth's
 *               reply.
 *   worker      runs as the mailbox owner; calls spec->session_start for
 *               each session it is given, runs the event loop
 *               (lib/base/event.h, conn.h); exits when it has had no
 *               session for $<name>_worker_linger seconds, or after it
 *               was told to retire (reload, the dispatcher's exit) and
 *               its sessions ended. Sessions of different uids never
 *               share a process; sessions of one uid do (a process of
 *               that uid can open every mailbox of that uid anyway).
 *
 * For the protocol module this means: session_start runs in a process
 * whose uid/gid already are info->uid/gid; it takes fd (non-blocking,
 * close-on-exec), typically wraps it in conn_new (conn.h), unreads
 * info->input, and returns at once; the session lives in callbacks. When
 * a session ends the module calls session_host_session_end(). All
 * sessions of a worker share the process: no process-wide state may
 * belong to one session.
 */
#ifndef POSTHORN_SESSION_HOST_H
#define POSTHORN_SESSION_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct session_info {
    const char *service;	/* AUTH_SERVICE_POP3 / AUTH_SERVICE_IMAP */
    const char *user;		/* as auth redeemed it */
    const char *mail_root;	/* absolute path of the Maildir++ root */
    uid_t uid;
    gid_t gid;
    uint64_t quota_bytes;	/* 0: none */
    const char *client_address;	/* for logging */
    const char *client_port;
    const void *input;		/* pipelined bytes read by the login process */
    size_t input_len;
    /* IMAP: the tag of the LOGIN/AUTHENTICATE command that the login
     * process left unanswered (the module writes "TAG OK ... Logged in");
     * "" when the hand-over had none (POP3) */
    const char *login_tag;
    /* TLS (issue 13): "" for a plaintext client; else the client speaks
     * TLS to the login process, which relays the session's plaintext
     * over fd (docs/login-split.md), and this is the protocol and cipher
     * ("TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)") for
     * the logs */
    const char *tls;
};

struct session_host_spec {
    const char *name;		/* "pop3d", "imapd": logging and parameters */
    const char *auth_service;	/* AUTH_SERVICE_POP3 / AUTH_SERVICE_IMAP */
    /* the line the dispatcher writes to the client before closing it
     * when the token is refused or auth cannot be reached */
    const char *reply_auth_failed;	/* "-ERR [AUTH] Authentication failed\r\n" */
    const char *reply_temp_failure;	/* "-ERR [SYS/TEMP] ...\r\n" */
    /* optional: the account cannot be served (a uid of 0, a bad reply
     * from auth, pop3d not root); NULL: reply_temp_failure */
    const char *reply_perm_failure;	/* "-ERR [SYS/PERM] ...\r\n" */
    /* worker, after its privilege drop, before its first session */
    void (*worker_init)(void);
    /* worker: a new session; the strings in info are valid during the
     * call only */
    void (*session_start)(int fd, const struct session_info *info);
    /* worker: retire - stop starting anything new; sessions end at
     * their next command boundary (IMAP: BYE) or when they finish */
    void (*worker_retire)(void);
};

/* session_host_main - run pop3d/imapd (called from main(); never returns
 * an error: it exits) */
int session_host_main(int argc, char **argv, const struct session_host_spec *spec);

/* session_host_session_end - a session of this worker ended */
void session_host_session_end(void);

/* session_host_retiring - true once the worker was told to retire */
bool session_host_retiring(void);

#endif
