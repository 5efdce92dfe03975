// The server soak (make soak): llama2-server on loopback under 32 clients for
// SECONDS, mixing whole and streamed answers, n > 1, clients that hang up
// mid-stream and mid-prompt, headers sent a byte a second, pipelined
// keep-alive requests, bodies over the limit and broken JSON, while a probe
// asks the same greedy question over and over and must get the same text.
// At the end: /health answers, no slot busy and nothing queued, /metrics
// adds up (requests taken = finished + cancelled + failed), the resident
// memory in the last second of load is within 5% of that at 20 s, and the
// open descriptors are as many as at the start. Under AddressSanitizer the
// Makefile turns its quarantine off (it would hold freed memory resident). Prints its figures; exits 1 on the first broken rule.
//   node tests/soak.mjs SERVER MODEL TOKENIZER SECONDS
import { spawn } from "node:child_process";
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import net from "node:net";

const [server, model, tokenizer, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg || 60);
const MAX_BODY = 16384;

function fail(why) {
    console.error(`soak: FAILED: ${why}`);
    if (child) child.kill("SIGKILL");
    process.exit(1);
}

const child = spawn(server, [model, "-z", tokenizer, "--port", "0", "--parallel", "4", "--queue", "64",
    "--max-body", String(MAX_BODY), "--threads", "1"], { stdio: ["ignore", "pipe", "inherit"] });
const port = await new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d) => {
        out += d;
        const m = out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
        if (m) resolve(Number(m[1]));
    });
    child.on("exit", (code) => reject(new Error(`the server exited (${code}) before listening`)));
}).catch((e) => fail(e.message));

const rss = () => Number(readFileSync(`/proc/${child.pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1]);
const fds = () => readdirSync(`/proc/${child.pid}/fd`).length;

// One raw exchange: writes the chunks (with a pause before each when given),
// reads until the server closes or `until(text)` holds; resolves the text.
function exchange(chunks, { pauseMs = 0, hangUpAfter = null, until = null, timeoutMs = 120000 } = {}) {
    return new Promise((resolve) => {
        const sock = net.connect(port, "127.0.0.1");
        let text = "";
        let done = false;
        const finish = () => { if (!done) { done = true; clearTimeout(timer); sock.destroy(); resolve(text); } };
        const timer = setTimeout(() => { text = "TIMEOUT " + text; finish(); }, timeoutMs);
        sock.setEncoding("utf8");
        sock.on("data", (d) => {
            text += d;
            if (hangUpAfter && text.includes(hangUpAfter)) finish();
            if (until && until(text)) finish();
        });
        sock.on("error", finish);
        sock.on("close", finish);
        sock.on("connect", async () => {
            for (const c of chunks) {
                if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
                if (done) return;
                sock.write(c);
            }
            if (hangUpAfter === "") finish();
        });
    });
}

const post = (path, body, extra = "") =>
    `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${extra}` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
const status = (text) => Number((text.match(/^HTTP\/1\.1 (\d+)/) || [])[1] || 0);
const bodyOf = (text) => text.slice(text.indexOf("\r\n\r\n") + 4);
const wholeDone = (text) => {
    const head = text.indexOf("\r\n\r\n");
    if (head < 0) return false;
    const len = text.slice(0, head).match(/Content-Length: (\d+)/i);
    return len ? Buffer.byteLength(text.slice(head + 4)) >= Number(len[1]) : false;
};

async function get(path) {
    const t = await exchange([`GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`]);
    return { status: status(t), body: bodyOf(t) };
}

const PROBE = JSON.stringify({ prompt: "Once upon a time", max_tokens: 48, temperature: 0 });
async function probeText() {
    const t = await exchange([post("/v1/completions", PROBE, "Connection: close\r\n")]);
    if (status(t) !== 200) fail(`the probe got ${status(t)}: ${bodyOf(t).slice(0, 200)}`);
    return JSON.parse(bodyOf(t)).choices[0].text;
}

const startFds = fds();
const expected = await probeText();
const counts = {};
const count = (k) => { counts[k] = (counts[k] || 0) + 1; };
let rss20 = 0;
const t0 = Date.now();
const end = t0 + seconds * 1000;
let rssEnd = 0;
setTimeout(() => { rss20 = rss(); }, Math.min(20000, seconds * 500));
// The last sample under the same load as the first (idle, with its threads
// and buffers gone, it would be lower whatever leaked).
setTimeout(() => { rssEnd = rss(); }, seconds * 1000 - 1000);

// Each client's kinds in turn, starting at its own.
const kinds = [
    async function whole(i) {
        const n = 1 + (i % 3);
        const t = await exchange([post("/v1/completions", JSON.stringify({ prompt: `Tale ${i}`, max_tokens: 24, n }),
            "Connection: close\r\n")]);
        if (status(t) !== 200 && status(t) !== 503) fail(`whole answer: ${status(t)} ${bodyOf(t).slice(0, 200)}`);
        if (status(t) === 200 && JSON.parse(bodyOf(t)).choices.length !== n) fail("whole answer: wrong choice count");
    },
    async function streamed(i) {
        const t = await exchange([post("/v1/chat/completions", JSON.stringify({
            messages: [{ role: "user", content: `Hi ${i}` }], max_tokens: 24, stream: true, n: 2 }),
            "Connection: close\r\n")]);
        if (status(t) === 200 && !t.includes("data: [DONE]")) fail("a stream ended without [DONE]");
        if (status(t) !== 200 && status(t) !== 503) fail(`stream: ${status(t)}`);
    },
    async function hangUpMidStream() {
        await exchange([post("/v1/completions", JSON.stringify({ prompt: "Once", max_tokens: 200, stream: true }),
            "Connection: close\r\n")], { hangUpAfter: "data: {" });
    },
    async function hangUpMidPrompt() {
        const body = JSON.stringify({ prompt: "A long prompt ".repeat(50), max_tokens: 8 });
        const req = post("/v1/completions", body);
        await exchange([req.slice(0, req.length - 40)], { hangUpAfter: "" });
    },
    async function slowHeaders() {
        const req = `GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;
        const slow = [...req.slice(0, 6)].concat([req.slice(6)]);
        const t = await exchange(slow, { pauseMs: 1000 });
        if (status(t) !== 200) fail(`slow headers: ${status(t)}`);
    },
    async function pipelined() {
        const one = `GET /health HTTP/1.1\r\nHost: x\r\n\r\n`;
        const last = `GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;
        const t = await exchange([one + one + last]);
        if ((t.match(/HTTP\/1\.1 200/g) || []).length !== 3) fail(`pipelined: ${t.slice(0, 300)}`);
    },
    async function overLimit() {
        const body = JSON.stringify({ prompt: "x".repeat(MAX_BODY + 10) });
        const t = await exchange([post("/v1/completions", body, "Connection: close\r\n")]);
        if (status(t) !== 413) fail(`over the limit: ${status(t)}`);
    },
    async function brokenJson() {
        const t = await exchange([post("/v1/completions", '{"prompt": "Once", "max_tokens": ', "Connection: close\r\n")],
            { until: wholeDone });
        if (status(t) !== 400) fail(`broken JSON: ${status(t)}`);
    },
];

async function client(i) {
    for (let k = i; Date.now() < end; k++) {
        const kind = kinds[k % kinds.length];
        await kind(i);
        count(kind.name);
    }
}

async function probe() {
    while (Date.now() < end) {
        const text = await probeText();
        if (text !== expected) fail(`the probe's greedy text changed under load:\n${expected}\n---\n${text}`);
        count("probe");
    }
}

await Promise.all([probe(), ...Array.from({ length: 32 }, (_, i) => client(i))]);

// /health first: its own connection is then closed too by the time the
// descriptors are counted below (counted right after it, the server could
// still be closing it).
const health = await get("/health");
// Idle again: every hang-up noticed, every answer gone out.
let metrics = "";
const m = (name) => Number((metrics.match(new RegExp(`\\n${name} (\\S+)`)) || [])[1]);
// (Up to 30 s: on a loaded host a hang-up can take seconds to be noticed;
// a descriptor that leaked never comes back.)
for (let i = 0; i < 300; i++) {
    metrics = (await get("/metrics")).body;
    // (A pause before counting: the server closes this request's own
    // connection just after answering it.)
    await new Promise((r) => setTimeout(r, 100));
    if (m("llama2_slots_busy") === 0 && m("llama2_queue_length") === 0 && fds() <= startFds) break;
}
const taken = m("llama2_requests_total");
const ended = m("llama2_requests_finished_total") + m("llama2_requests_cancelled_total") +
    m("llama2_requests_failed_total");
const fdsEnd = fds();
console.log(`soak: ${seconds} s, 32 clients and a probe: ${JSON.stringify(counts)}`);
console.log(`soak: requests taken ${taken}, finished + cancelled + failed ${ended}; ` +
    `RSS ${rss20} KiB at 20 s, ${rssEnd} KiB a second before the end; descriptors ${startFds} at the start, ${fdsEnd} at the end`);
if (health.status !== 200) fail(`/health answered ${health.status}`);
if (m("llama2_slots_busy") !== 0 || m("llama2_queue_length") !== 0) fail("slots or queue not back to 0");
if (!(taken === ended)) fail("the requests taken are not the finished, cancelled and failed ones");
if (Math.abs(rssEnd - rss20) > 0.05 * rss20) fail("the resident memory moved more than 5% since 20 s");
if (fdsEnd !== startFds) {
    const open = readdirSync(`/proc/${child.pid}/fd`).map((fd) => {
        try { return `${fd} -> ${readlinkSync(`/proc/${child.pid}/fd/${fd}`)}`; } catch { return fd; }
    });
    fail(`the open descriptors are not back to their count at the start: ${open.join(", ")}`);
}
child.kill("SIGTERM");
const code = await new Promise((r) => child.on("exit", (c) => r(c)));
if (code !== 0) fail(`the server exited with ${code} on SIGTERM`);
console.log("soak: passed");
