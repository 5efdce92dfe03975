// The prefix cache under churn (make churn): llama2-server with a small
// --cache-ram store, 4 slots and 8 clients that keep starting new
// conversations and going back to old ones (so slots are given up to other
// conversations, their positions kept in the store, taken back, dropped
// for room) for SECONDS. Every 2 s it samples the server's resident memory
// (VmRSS) and the store's bytes in /metrics. At the end:
//   - the store never held more than its cap (the samples, and the
//     store's own high-water mark, llama2_prefix_cache_ram_peak_bytes);
//   - the resident memory never passed cap + weights + KV cache + ALLOWANCE,
//     with the weights and the KV cache as the server's start line states
//     them (the file's size; every slot's positions, in full), ALLOWANCE
//     given in MiB;
//   - the store was used (conversations came back to it), requests taken =
//     finished (nothing failed or was cut), and /health answers.
// ALLOWANCE is the rest of a server's memory: code and libraries, thread
// stacks, the session's buffers for a batch (132 rows of scores over the
// vocabulary: 16.1 MiB with 32,000 tokens), the request bodies and texts in
// flight, and the free memory malloc keeps; the same churn with no store
// (CACHE_MIB 0: the last check then fails, the figures print) measures it;
// bench/RESULTS.md has the figures on stories260K and the stories15M shape.
// Prints its figures; exits 1 on the first broken rule.
//   node tests/churn.mjs SERVER MODEL TOKENIZER SECONDS CACHE_MIB ALLOWANCE_MIB [THREADS]
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import http from "node:http";

const [server, model, tokenizer, secondsArg, capArg, allowanceArg, threadsArg] = process.argv.slice(2);
if (!allowanceArg || ![secondsArg, capArg, allowanceArg].every((v) => /^[0-9]+$/.test(v))) {
    console.error("usage: node tests/churn.mjs SERVER MODEL TOKENIZER SECONDS CACHE_MIB ALLOWANCE_MIB [THREADS]");
    process.exit(2);
}
const seconds = Number(secondsArg);
const capMiB = Number(capArg);
const MIB = 1024 * 1024;
const CAP = capMiB * MIB;
const ALLOWANCE = Number(allowanceArg) * MIB;
const SLOTS = 4, CLIENTS = 8, CTX = 512;

let child = null;
function fail(why) {
    console.error(`churn: FAILED: ${why}`);
    if (child) child.kill("SIGKILL");
    process.exit(1);
}

child = spawn(server, [model, "-z", tokenizer, "--port", "0", "--parallel", String(SLOTS), "--ctx", String(CTX),
    "--cache-ram", String(capMiB), "--threads", threadsArg || "1"], { stdio: ["ignore", "pipe", "pipe"] });
let startLine = "";
child.stderr.on("data", (d) => { startLine += d; });
const port = await new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d) => {
        out += d;
        const m = out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
        if (m) resolve(Number(m[1]));
    });
    child.on("exit", (code) => reject(new Error(`the server exited (${code}) before listening: ${startLine}`)));
}).catch((e) => fail(e.message));
await new Promise((r) => setTimeout(r, 200)); // the start line follows the listening one

// "model M (fp32 weights, 57.9 MiB), ..., KV cache 27.0 MiB": sizes printed to
// 0.1 MiB, so 0.05 MiB each is added back.
const size = (what) => {
    const m = startLine.match(new RegExp(`${what} ([0-9.]+) (MiB|GiB)`));
    if (!m) fail(`no '${what}' size in the server's start line: ${startLine}`);
    return (Number(m[1]) + 0.05) * (m[2] === "GiB" ? 1024 : 1) * MIB;
};
const WEIGHTS = size("weights,"), KV = size("KV cache");
const BOUND = CAP + WEIGHTS + KV + ALLOWANCE;

function request(method, path, body) {
    return new Promise((resolve, reject) => {
        const req = http.request({ host: "127.0.0.1", port, path, method, agent: false,
            headers: body ? { "Content-Type": "application/json", "Content-Length": Buffer.byteLength(body) } : {} },
        (res) => {
            let text = "";
            res.setEncoding("utf8");
            res.on("data", (d) => { text += d; });
            res.on("end", () => resolve({ status: res.statusCode, text }));
        });
        req.on("error", reject);
        req.end(body);
    });
}

const metric = (text, name) => {
    const m = text.match(new RegExp(`^${name} (\\S+)$`, "m"));
    if (!m) fail(`no ${name} in /metrics`);
    return Number(m[1]);
};
const rss = () => Number(readFileSync(`/proc/${child.pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1]) * 1024;

// Words from a seeded generator: every conversation its own text.
let seed = 12345;
const random = () => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed / 2147483648; };
const WORDS = ("once upon a time there was little girl named lily she liked to play in the park with her " +
    "friend ben one day they saw big red ball under tree and wanted it but dog ran away happy sad").split(" ");
const words = (n) => Array.from({ length: n }, () => WORDS[Math.floor(random() * WORDS.length)]).join(" ");

// Conversations: a new one, or one of the last 48 taken up again (each
// turn: its messages so far, the reply and a new question).
const pool = [];
let conversations = 0, turns = 0, retired = 0;
const deadline = Date.now() + seconds * 1000;
async function client() {
    while (Date.now() < deadline) {
        let talk;
        const idle = pool.filter((t) => !t.busy);
        if (idle.length > 0 && random() < 0.6) {
            talk = idle[Math.floor(random() * idle.length)];
        } else {
            talk = { busy: false, messages: [{ role: "system", content: `Story ${conversations++}: ${words(20)}.` }] };
            pool.push(talk);
            if (pool.length > 48) pool.splice(pool.findIndex((t) => !t.busy), 1);
        }
        talk.busy = true;
        talk.messages.push({ role: "user", content: `${words(8 + Math.floor(random() * 24))}?` });
        const body = JSON.stringify({ messages: talk.messages, max_tokens: 8 + Math.floor(random() * 40),
            temperature: 0.8, seed: Math.floor(random() * 1e6) });
        const r = await request("POST", "/v1/chat/completions", body).catch((e) => fail(`a turn: ${e.message}`));
        talk.busy = false;
        if (r.status === 400 && r.text.includes("context_length_exceeded")) {
            pool.splice(pool.indexOf(talk), 1); // the conversation is full: it ends
            retired++;
            continue;
        }
        if (r.status !== 200) fail(`a turn answered ${r.status}: ${r.text.slice(0, 300)}`);
        const answer = JSON.parse(r.text);
        talk.messages.push({ role: "assistant", content: answer.choices[0].message.content });
        turns++;
        if (answer.usage.prompt_tokens + 96 > CTX) {
            pool.splice(pool.indexOf(talk), 1);
            retired++;
        }
    }
}

let maxRss = 0, maxStore = 0, samples = 0;
const started = Date.now();
async function sample() {
    const resident = rss();
    const m = await request("GET", "/metrics");
    const store = metric(m.text, "llama2_prefix_cache_ram_bytes");
    maxRss = Math.max(maxRss, resident);
    maxStore = Math.max(maxStore, store);
    if (samples++ % 15 === 0)
        console.log(`churn: ${((Date.now() - started) / 1000).toFixed(0)} s: RSS ${(resident / MIB).toFixed(1)} MiB, ` +
            `store ${(store / MIB).toFixed(1)} MiB, ${turns} turns of ${conversations} conversations`);
    if (store > CAP) fail(`the store holds ${store} bytes, over its cap of ${CAP}`);
    if (resident > BOUND) fail(`RSS ${(resident / MIB).toFixed(1)} MiB is over the bound ${(BOUND / MIB).toFixed(1)} MiB`);
}
const sampler = setInterval(() => { sample().catch((e) => fail(`a sample: ${e.message}`)); }, 2000);
await Promise.all(Array.from({ length: CLIENTS }, client));
clearInterval(sampler);
await sample();

const m = (await request("GET", "/metrics")).text;
const health = await request("GET", "/health");
const peak = metric(m, "llama2_prefix_cache_ram_peak_bytes");
const taken = metric(m, "llama2_requests_total"), finished = metric(m, "llama2_requests_finished_total");
const reused = metric(m, "llama2_prefix_cache_tokens_total");
console.log(`churn: ${seconds} s, ${turns} turns of ${conversations} conversations (${retired} ran out of context), ` +
    `${reused} prompt tokens reused`);
console.log(`churn: RSS at most ${(maxRss / MIB).toFixed(1)} MiB, bound ${(BOUND / MIB).toFixed(1)} MiB = ` +
    `store cap ${capMiB} + weights ${(WEIGHTS / MIB).toFixed(1)} + KV cache ${(KV / MIB).toFixed(1)} + ` +
    `allowance ${ALLOWANCE / MIB} MiB; the store at most ${(maxStore / MIB).toFixed(1)} MiB sampled, ` +
    `${(peak / MIB).toFixed(1)} MiB its peak`);
if (health.status !== 200) fail(`/health answered ${health.status}`);
if (peak > CAP) fail(`the store's peak, ${peak} bytes, is over its cap of ${CAP}`);
if (peak === 0) fail("the store was never used");
if (taken !== finished) fail(`${taken} requests taken, ${finished} finished`);
child.kill("SIGTERM");
await new Promise((r) => child.on("exit", r));
child = null;
console.log("churn: passed");
