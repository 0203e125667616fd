// imapflow_dump.mjs - what a strict third-party IMAP client (imapflow,
// from npm; tools/install-deps.sh puts it in tests/node_modules) makes of
// a server: it logs in, lists the folders, selects INBOX read-only and
// fetches every message's UID, flags, size, internal date, ENVELOPE,
// BODYSTRUCTURE, header block and some body parts, and runs a few
// searches; everything it parsed is printed as one JSON document.
// tests/test_conformance.py runs it against posthorn and Dovecot on
// copies of the same Maildir and compares the two documents.
//
//   node tests/imapflow_dump.mjs PORT USER PASSWORD
//
// Exit status 0; 2 when imapflow failed (its error on stderr: a response
// it could not parse ends the connection).
import { ImapFlow } from 'imapflow';

const [port, user, pass] = process.argv.slice(2);
const timer = setTimeout(() => {
    console.error('imapflow_dump: no result within 60 s');
    process.exit(3);
}, 60000);

function plain(v) {
    // Buffers, Dates, Sets and Maps as JSON-friendly values
    if (v === null || v === undefined) return v ?? null;
    if (Buffer.isBuffer(v)) return v.toString('latin1');
    if (v instanceof Date) return isNaN(v) ? 'invalid-date' : v.getTime() / 1000;
    if (v instanceof Set) return [...v].sort();
    if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [k, plain(x)]));
    if (Array.isArray(v)) return v.map(plain);
    if (typeof v === 'object') {
        const out = {};
        for (const k of Object.keys(v).sort()) out[k] = plain(v[k]);
        return out;
    }
    return v;
}

const client = new ImapFlow({
    host: '127.0.0.1', port: Number(port), secure: false, doSTARTTLS: false,
    auth: { user, pass }, logger: false, connectionTimeout: 20000, greetingTimeout: 20000,
    socketTimeout: 30000,
});
client.on('error', err => {
    console.error('imapflow_dump: ' + (err.stack || err));
    process.exit(2);
});

try {
    await client.connect();
    const out = {};
    out.list = (await client.list()).map(m => plain({
        path: m.path, delimiter: m.delimiter, flags: m.flags, specialUse: m.specialUse ?? null,
        subscribed: m.subscribed,
    })).sort((a, b) => (a.path < b.path ? -1 : 1));
    const mb = await client.mailboxOpen('INBOX', { readOnly: true });
    out.mailbox = plain({ exists: mb.exists, flags: mb.flags, permanentFlags: mb.permanentFlags,
                          uidNext: mb.uidNext, readOnly: mb.readOnly });
    out.messages = [];
    for await (const msg of client.fetch('1:*', {
        uid: true, flags: true, size: true, internalDate: true, envelope: true,
        bodyStructure: true, headers: true, bodyParts: ['1', '2', 'TEXT', '1.MIME'],
    })) {
        out.messages.push(plain({
            seq: msg.seq, uid: msg.uid, flags: msg.flags, size: msg.size,
            internalDate: msg.internalDate, envelope: msg.envelope,
            bodyStructure: msg.bodyStructure, headers: msg.headers, bodyParts: msg.bodyParts,
        }));
    }
    out.search = {};
    const searches = {
        all: { all: true }, seen: { seen: true }, unseen: { seen: false },
        flagged: { flagged: true }, bodyWalrus: { body: 'walrus' }, textOcelot: { text: 'ocelot' },
        fromAlice: { from: 'alice' }, subjectNested: { subject: 'nested' },
        larger: { larger: 1000 }, orFlaggedDraft: { or: [{ flagged: true }, { draft: true }] },
        utf8Body: { body: 'ärger' },
    };
    for (const [name, q] of Object.entries(searches)) {
        out.search[name] = (await client.search(q)) || [];
    }
    await client.logout();
    clearTimeout(timer);
    // (exit only once the pipe took it all)
    process.stdout.write(JSON.stringify(out, null, 1) + '\n', () => process.exit(0));
} catch (err) {
    const response = err.response ? '\nresponse: ' + err.response : '';
    console.error('imapflow_dump: ' + (err.stack || err) + response);
    process.exit(2);
}
