// The official openai npm package against llama2-server (run by
// tests/test_server.c): node openai_client.mjs BASE_URL API_KEY NPM_PREFIX.
// Prints one JSON object of what the client saw; exits non-zero on a
// failure the test should report.
import { createRequire } from 'node:module';

const [baseURL, apiKey, prefix] = process.argv.slice(2);
const require = createRequire(`${prefix}/`);
const { OpenAI } = require('openai');

const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60000 });
const seen = {};

const models = await client.models.list();
seen.models = models.data[0].id;

const messages = [{ role: 'user', content: 'Tell me a story.' }];
const chat = await client.chat.completions.create({
  model: seen.models, messages, max_tokens: 40, temperature: 0,
});
if (chat.object !== 'chat.completion' || chat.choices[0].message.role !== 'assistant') {
  throw new Error(`not a chat completion: ${JSON.stringify(chat)}`);
}
seen.chat = chat.choices[0].message.content;

const stream = await client.chat.completions.create({
  model: seen.models, messages, max_tokens: 40, temperature: 0, stream: true,
  stream_options: { include_usage: true },
});
let text = '';
let usage = null;
for await (const chunk of stream) {
  if (chunk.choices.length > 0) text += chunk.choices[0].delta.content ?? '';
  if (chunk.usage) usage = chunk.usage;
}
if (!usage || usage.completion_tokens !== chat.usage.completion_tokens) {
  throw new Error(`stream usage ${JSON.stringify(usage)}, whole ${JSON.stringify(chat.usage)}`);
}
seen.chat_stream = text;

const completion = await client.completions.create({
  model: seen.models, prompt: 'Once upon a time', max_tokens: 30, temperature: 0,
});
seen.completion = completion.choices[0].text;

const two = await client.completions.create({
  model: seen.models, prompt: 'Once upon a time', max_tokens: 10, n: 2, seed: 7,
});
seen.choices = String(two.choices.length);

try {
  const wrong = new OpenAI({ baseURL, apiKey: 'wrong', maxRetries: 0 });
  await wrong.models.list();
  seen.wrong_key = 'accepted';
} catch (e) {
  seen.wrong_key = `${e.status} ${e.code}`;
}

console.log(JSON.stringify(seen));
