// make bench-server: llama2-server under 1, 4, 8 and 16 concurrent
// streaming clients, each a prompt of 32 token ids and 64 tokens generated
// greedily (EOS ignored), on the random stories110M-shaped models that
// llama2-bench writes (fp32 and int8). For each number of clients, over
// --reps rounds in which every client starts at once:
//
//   gen tok/s   all tokens generated / the round's wall time (first request
//               sent to last token received): what the clients get;
//   tg tok/s    the tokens after each client's first / the time from the
//               earliest first token to the last token: the decoding rate,
//               prompts left out (but the late clients' prompts, run while
//               the early ones decode, inside the window);
//   all-decoding tok/s
//               the tokens received while every client is decoding (from
//               the latest first token to the earliest last token) / that
//               time: N streams decoding at once, as llama-batched-bench's
//               and `llama2-bench --parallel`'s S_TG count them;
//   TTFT        time to first token (the first event of a stream), median
//               and 99th percentile over every request of the rounds.
//
// Then the prefix cache: the second turn of a conversation (a first turn of
// --turn token ids, 16 tokens generated; the second: the same ids and 20
// more), its time to first token with the cache and with --no-prefix-cache
// (4 slots, room for both turns), median over --reps conversations.
//
// And --conversations (16) conversations of --turns (4) turns at once
// through /v1/chat/completions, each client sending its next turn when its
// reply has ended (the reply sent back as text, and a new message; 32
// tokens generated a turn), on --conv-slots slots (default: one each), with
// the prefix cache (and a --cache-ram store, default none) and with
// --no-prefix-cache --cache-ram 0, alternating, --conv-reps runs each:
// tokens generated per second of wall time; per turn, the prompt tokens,
// those the cache reused and the time to first token.
//
// Then a single stream through the server against the llama2 program on
// the same model, alternating (CLI, server) --pairs times in one sitting:
// the CLI's "achieved tok/s" with a BOS-only prompt and 64 tokens, and the
// server's one-client tg tok/s.
//
//   node tools/bench_server.mjs [--server ./llama2-server] [--cli ./llama2]
//        [--tokenizer models/tokenizer.bin] [--models bench-models]
//        [--types f32,q8] [--clients 1,4,8,16] [--reps 3] [--pairs 3]
//        [--threads 2] [--shape stories110M] [--turn 880]
//        [--scenarios clients,second,conversations] [--conversations 16]
//        [--turns 4] [--conv-slots N] [--conv-reps 1] [--cache-ram MiB]
import { spawn, spawnSync } from 'node:child_process';
import http from 'node:http';
import { existsSync } from 'node:fs';

const options = {
  server: './llama2-server', cli: './llama2', tokenizer: 'models/tokenizer.bin', models: 'bench-models',
  types: 'f32,q8', clients: '1,4,8,16', reps: '3', pairs: '3', threads: '2', shape: 'stories110M',
  prompt: '32', gen: '64', turn: '880', scenarios: 'clients,second,conversations',
  conversations: '16', turns: '4', 'conv-slots': '', 'conv-reps': '1', 'cache-ram': '0',
};
for (let i = 2; i < process.argv.length; i += 2) {
  const name = process.argv[i].replace(/^--/, '');
  if (!(name in options) || i + 1 >= process.argv.length) {
    console.error(`bench_server: unknown option or missing value: ${process.argv[i]}`);
    process.exit(2);
  }
  options[name] = process.argv[i + 1];
}
const wanted = new Set(options.scenarios.split(','));
for (const w of wanted) {
  if (!['clients', 'second', 'conversations'].includes(w)) {
    console.error(`bench_server: --scenarios: unknown scenario '${w}' (expected clients, second, conversations)`);
    process.exit(2);
  }
}
const PROMPT = Number(options.prompt);
const GEN = Number(options.gen);
const THREADS = options.threads;
const GROUP = { stories15M: 48, stories42M: 32, stories110M: 64, 'tinyllama1.1B': 64 };

const now = () => Number(process.hrtime.bigint()) / 1e9;

// A fixed pseudo-random prompt per client: ids 3..31999 (no special token).
function prompt(client, length = PROMPT) {
  let x = BigInt(client + 1) * 0x9E3779B97F4A7C15n & 0xFFFFFFFFFFFFFFFFn;
  const ids = [];
  for (let i = 0; i < length; i++) {
    x ^= x << 13n; x &= 0xFFFFFFFFFFFFFFFFn; x ^= x >> 7n; x ^= x << 17n; x &= 0xFFFFFFFFFFFFFFFFn;
    ids.push(3 + Number(x % 31997n));
  }
  return ids;
}

// The server running, killed if this program ends early.
let running = null;
process.on('exit', () => { if (running) running.kill('SIGKILL'); });

function startServer(model, extra = ['--parallel', '16', '--ctx', String(PROMPT + GEN + 8)]) {
  return new Promise((resolve, reject) => {
    const child = spawn(options.server, [model, '-z', options.tokenizer, '--port', '0', '--threads', THREADS,
      ...extra], { stdio: ['ignore', 'pipe', 'ignore'] });
    running = child;
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) resolve({ child, port: Number(m[1]) });
    });
    child.on('exit', (code) => reject(new Error(`llama2-server exited (${code}) before it was ready`)));
  });
}

// One streaming request; resolves with its timings, token count and the
// prompt tokens the prefix cache reused.
function one(port, ids, maxTokens = GEN) {
  const body = JSON.stringify({ prompt: ids, max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: true,
    stream_options: { include_usage: true } });
  return new Promise((resolve, reject) => {
    const sent = now();
    let first = 0, last = 0, tokens = 0, cached = 0, buffer = '';
    const times = [];
    const req = http.request({ host: '127.0.0.1', port, path: '/v1/completions', method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
      agent: false }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
          const data = JSON.parse(event.slice(6));
          if (data.usage) {
            tokens = data.usage.completion_tokens;
            cached = data.usage.prompt_tokens_details.cached_tokens;
          }
          if (data.choices.length > 0) {
            last = now();
            if (!first) first = last;
            times.push(last);
          }
        }
      });
      res.on('end', () => resolve({ sent, first, last, tokens, cached, times }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function round(port, clients) {
  const start = now();
  const results = await Promise.all(Array.from({ length: clients }, (_, i) => one(port, prompt(i))));
  const end = Math.max(...results.map((r) => r.last));
  const firstToken = Math.min(...results.map((r) => r.first));
  const tokens = results.reduce((s, r) => s + r.tokens, 0);
  const after = results.reduce((s, r) => s + r.tokens - 1, 0);
  for (const r of results) if (r.tokens !== GEN) throw new Error(`a client got ${r.tokens} tokens, not ${GEN}`);
  // Every client decoding: from the latest first token to the earliest last.
  const from = Math.max(...results.map((r) => r.first)), to = Math.min(...results.map((r) => r.last));
  const during = results.reduce((s, r) => s + r.times.filter((t) => t > from && t <= to).length, 0);
  return { gen: tokens / (end - start), tg: after / (end - firstToken), all: to > from ? during / (to - from) : NaN,
    ttft: results.map((r) => r.first - r.sent) };
}

const median = (v) => { const s = [...v].sort((a, b) => a - b); const n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2; };
const percentile = (v, p) => { const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]; };

// The second turn's time to first token, with the prefix cache or without,
// over --reps conversations; and the tokens it reused.
async function secondTurns(model, cache) {
  const { child, port } = await startServer(model, ['--parallel', '4', '--ctx', String(Number(options.turn) + 44),
    ...(cache ? [] : ['--no-prefix-cache'])]);
  const ttft = [];
  let cached = 0;
  for (let r = 0; r < Number(options.reps); r++) {
    const first = prompt(1000 + r, Number(options.turn));
    await one(port, first, 16);
    const second = await one(port, [...first, ...prompt(2000 + r, 20)], 16);
    ttft.push(second.first - second.sent);
    cached = second.cached;
  }
  child.kill('SIGTERM');
  await new Promise((resolve) => child.on('exit', resolve));
  running = null;
  return { ttft: median(ttft), cached };
}

// Words for the conversations' text: each client's own sequence of them.
const WORDS = ('time story little girl boy dog cat tree house garden river friend happy sad sun rain blue red ' +
  'green ball book play run jump sing dance bird fish cake milk bread park school teacher mother father ' +
  'sister brother night day morning star moon flower box car train boat hat shoe window door').split(' ');
function words(seed, count) {
  let x = BigInt(seed + 1) * 0x9E3779B97F4A7C15n & 0xFFFFFFFFFFFFFFFFn;
  const out = [];
  for (let i = 0; i < count; i++) {
    x ^= x << 13n; x &= 0xFFFFFFFFFFFFFFFFn; x ^= x >> 7n; x ^= x << 17n; x &= 0xFFFFFFFFFFFFFFFFn;
    out.push(WORDS[Number(x % BigInt(WORDS.length))]);
  }
  return out.join(' ');
}

// One streamed chat turn: its time to first token, the reply's text and
// tokens, and usage's prompt and cached tokens.
function chatTurn(port, messages, maxTokens) {
  const body = JSON.stringify({ messages, max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream: true,
    stream_options: { include_usage: true } });
  return new Promise((resolve, reject) => {
    const sent = now();
    let first = 0, text = '', usage = null, buffer = '';
    const req = http.request({ host: '127.0.0.1', port, path: '/v1/chat/completions', method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) },
      agent: false }, (res) => {
      if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
          const data = JSON.parse(event.slice(6));
          if (data.usage) usage = data.usage;
          // The chunk naming the assistant goes out before the first token.
          for (const c of data.choices) {
            if (!first && (c.delta.content || c.finish_reason)) first = now();
            text += c.delta.content || '';
          }
        }
      });
      res.on('end', () => {
        if (!usage) return reject(new Error('a turn ended without usage'));
        resolve({ ttft: first - sent, end: now(), text, tokens: usage.completion_tokens,
          prompt: usage.prompt_tokens, cached: usage.prompt_tokens_details.cached_tokens });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const CONVERSATIONS = 16, TURNS = 4, CONV_REPLY = 32;

// --conversations clients, each a conversation of --turns turns through
// /v1/chat/completions, all started at once; each client sends its next
// turn as soon as its reply has ended: the messages so far, the reply as
// text (as a chat client does), and a new user message. Each conversation
// has its own system prompt (about 40 words) and user messages (about 30
// words). Per turn: time to first token (median over the clients), prompt
// tokens, those the cache reused; over the whole: tokens generated per
// second of wall time.
async function conversations(model, extra) {
  const { child, port } = await startServer(model, ['--ctx', '640', ...extra]);
  const clients = Number(options.conversations), turns = Number(options.turns);
  const perTurn = Array.from({ length: turns }, () => ({ ttft: [], prompt: 0, cached: 0 }));
  let tokens = 0;
  const start = now();
  const ends = await Promise.all(Array.from({ length: clients }, async (_, c) => {
    const messages = [{ role: 'system', content: `You are helper ${c}. ${words(5000 + c, 40)}.` }];
    let end = 0;
    for (let t = 0; t < turns; t++) {
      messages.push({ role: 'user', content: `${words(6000 + 16 * c + t, 30)}?` });
      const r = await chatTurn(port, messages, CONV_REPLY);
      if (r.tokens !== CONV_REPLY) throw new Error(`a turn got ${r.tokens} tokens, not ${CONV_REPLY}`);
      messages.push({ role: 'assistant', content: r.text });
      perTurn[t].ttft.push(r.ttft);
      perTurn[t].prompt += r.prompt;
      perTurn[t].cached += r.cached;
      tokens += r.tokens;
      end = r.end;
    }
    return end;
  }));
  const rate = tokens / (Math.max(...ends) - start);
  child.kill('SIGTERM');
  await new Promise((resolve) => child.on('exit', resolve));
  running = null;
  return { rate, perTurn };
}

function cliRate(model) {
  const run = spawnSync(options.cli, [model, '-z', options.tokenizer, '-t', '0', '-n', String(GEN + 1), '-i', '',
    '--threads', THREADS], { encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
  const m = run.stderr.match(/achieved tok\/s: ([0-9.]+)/);
  if (!m) throw new Error(`llama2 gave no tok/s: ${run.stderr}`);
  return Number(m[1]);
}

for (const tool of [options.server, options.cli, options.tokenizer]) {
  if (!existsSync(tool)) {
    console.error(`bench_server: ${tool} is missing (make llama2-server llama2-bench test-models)`);
    process.exit(1);
  }
}
const singles = [];
if (wanted.has('clients')) {
  console.log(`llama2-server: ${options.shape}, ${PROMPT}-token prompts, ${GEN} tokens each (greedy, EOS ignored), ` +
    `${THREADS} threads, --parallel 16, ${options.reps} rounds a row`);
  console.log('| model | clients | gen tok/s (wall) | tg tok/s | all-decoding tok/s | TTFT median | TTFT p99 |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const type of options.types.split(',')) {
    const model = `${options.models}/${options.shape}-${type === 'f32' ? 'f32' : `q8g${GROUP[options.shape]}`}.bin`;
    const { child, port } = await startServer(model);
    await round(port, 1); // warm: every weight page read once
    for (const clients of options.clients.split(',').map(Number)) {
      const rounds = [];
      for (let r = 0; r < Number(options.reps); r++) rounds.push(await round(port, clients));
      const ttft = rounds.flatMap((r) => r.ttft);
      console.log(`| ${type} | ${clients} | ${median(rounds.map((r) => r.gen)).toFixed(1)} | ` +
        `${median(rounds.map((r) => r.tg)).toFixed(1)} | ${median(rounds.map((r) => r.all)).toFixed(1)} | ` +
        `${(median(ttft) * 1e3).toFixed(0)} ms | ` +
        `${(percentile(ttft, 99) * 1e3).toFixed(0)} ms |`);
    }
    // One stream: the server and the command line, alternating.
    const server = [], cli = [];
    for (let p = 0; p < Number(options.pairs); p++) {
      cli.push(cliRate(model));
      server.push((await round(port, 1)).tg);
    }
    singles.push({ type, server, cli });
    child.kill('SIGTERM');
    await new Promise((resolve) => child.on('exit', resolve));
    running = null;
  }
}
if (wanted.has('second')) {
  console.log(`\nThe second turn of a conversation (${options.turn} ids, then the same and 20 more; 16 tokens each), ` +
    `time to first token, median of ${options.reps}:`);
  console.log('| model | prefix cache | cached tokens | no cache | cache / no cache |');
  console.log('| --- | --- | --- | --- | --- |');
  for (const type of options.types.split(',')) {
    const model = `${options.models}/${options.shape}-${type === 'f32' ? 'f32' : `q8g${GROUP[options.shape]}`}.bin`;
    const on = await secondTurns(model, true);
    const off = await secondTurns(model, false);
    console.log(`| ${type} | ${(on.ttft * 1e3).toFixed(0)} ms | ${on.cached} | ${(off.ttft * 1e3).toFixed(0)} ms | ` +
      `${(on.ttft / off.ttft).toFixed(3)} |`);
  }
}
if (wanted.has('conversations')) {
  const clients = Number(options.conversations), slots = Number(options['conv-slots'] || clients);
  const ram = options['cache-ram'];
  const on = ['--parallel', String(slots), '--cache-ram', ram];
  const off = ['--parallel', String(slots), '--no-prefix-cache', '--cache-ram', '0'];
  console.log(`\n${clients} conversations of ${options.turns} turns at once through /v1/chat/completions ` +
    `(a system prompt of about 50 tokens, user messages of about 40, replies of ${CONV_REPLY} tokens sent back as ` +
    `text), ${slots} slots, --ctx 640; the prefix cache (--cache-ram ${ram}) against --no-prefix-cache ` +
    `--cache-ram 0, alternating, ${options['conv-reps']} runs each:`);
  console.log('| model | run | prefix cache tok/s | no cache tok/s | cache / no cache |');
  console.log('| --- | --- | --- | --- | --- |');
  const turnTables = [];
  for (const type of options.types.split(',')) {
    const model = `${options.models}/${options.shape}-${type === 'f32' ? 'f32' : `q8g${GROUP[options.shape]}`}.bin`;
    const runs = { on: [], off: [] };
    for (let r = 0; r < Number(options['conv-reps']); r++) {
      const order = r % 2 ? ['off', 'on'] : ['on', 'off'];
      for (const which of order) runs[which].push(await conversations(model, which === 'on' ? on : off));
      console.log(`| ${type} | ${r + 1} | ${runs.on[r].rate.toFixed(1)} | ${runs.off[r].rate.toFixed(1)} | ` +
        `${(runs.on[r].rate / runs.off[r].rate).toFixed(3)} |`);
    }
    turnTables.push({ type, runs });
  }
  console.log('\nPer turn, over every run: prompt tokens and those the cache reused (sums over the conversations), ' +
    'evaluated = prompt - cached; time to first token, median over the conversations:');
  console.log('| model | turn | prompt tokens | cached (cache on) | evaluated: on / off | TTFT on | TTFT off |');
  console.log('| --- | --- | --- | --- | --- | --- | --- |');
  for (const { type, runs } of turnTables) {
    for (let t = 0; t < Number(options.turns); t++) {
      const sum = (list, key) => list.reduce((s, run) => s + run.perTurn[t][key], 0) / list.length;
      const ttft = (list) => median(list.flatMap((run) => run.perTurn[t].ttft)) * 1e3;
      const prompt = sum(runs.on, 'prompt'), cached = sum(runs.on, 'cached');
      const offEval = sum(runs.off, 'prompt') - sum(runs.off, 'cached');
      console.log(`| ${type} | ${t + 1} | ${prompt} | ${cached} | ${prompt - cached} / ${offEval} | ` +
        `${ttft(runs.on).toFixed(0)} ms | ${ttft(runs.off).toFixed(0)} ms |`);
    }
  }
}
if (wanted.has('clients')) {
  console.log('\nOne stream, alternating runs (tok/s: best / median):');
  console.log('| model | llama2 (CLI) | llama2-server | server / CLI (medians) |');
  console.log('| --- | --- | --- | --- |');
  for (const s of singles) {
    const fmt = (v) => `${Math.max(...v).toFixed(1)} / ${median(v).toFixed(1)}`;
    console.log(`| ${s.type} | ${fmt(s.cli)} | ${fmt(s.server)} | ${(median(s.server) / median(s.cli)).toFixed(3)} |`);
  }
}
