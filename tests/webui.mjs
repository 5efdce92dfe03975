// llama2-server's chat page (GET /) in headless Debian chromium, driven by
// puppeteer-core (run by tests/test_server.c):
//   node webui.mjs URL API_KEY NPM_PREFIX SCREENSHOT
// At phone width: the key field shows (the server has --api-key); a message
// gets a streamed reply with its tokens/s and cached tokens; a second turn
// sends the first and reuses its tokens; stop ends a long reply; new chat
// empties the page; what the user and the model write is shown as text.
// Prints one JSON object of what it saw; exits non-zero on a failure.
import { createRequire } from 'node:module';

const [url, apiKey, prefix, screenshot] = process.argv.slice(2);
const require = createRequire(`${prefix}/`);
const puppeteer = require('puppeteer-core');

const seen = {};
const fail = (why) => { throw new Error(why); };
const browser = await puppeteer.launch({
  executablePath: '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
try {
  const page = await browser.newPage();
  await page.setViewport({ width: 390, height: 844 });
  const requests = [];
  const outside = [];
  let fake = null; // a made-up reply to answer the next chat request with
  await page.setRequestInterception(true);
  page.on('request', (req) => {
    if (!req.url().startsWith(url)) outside.push(req.url());
    if (req.method() === 'POST' && req.url().endsWith('/v1/chat/completions')) {
      requests.push(JSON.parse(req.postData()));
      if (fake) {
        const body = fake;
        fake = null;
        return req.respond({ status: 200, contentType: 'text/event-stream', body });
      }
    }
    return req.continue();
  });
  await page.goto(url, { waitUntil: 'networkidle0' });
  seen.title = await page.title();
  await page.waitForSelector('#key-label:not([hidden])', { timeout: 10000 });
  await page.type('#api-key', apiKey);
  const set = (id, value) => page.$eval(id, (el, v) => { el.value = v; }, value);
  await set('#temperature', '0');
  await set('#max-tokens', '24');

  // Sends a message and waits for its reply to end; returns the reply.
  const turn = async (text) => {
    const before = await page.$$eval('.assistant', (els) => els.length);
    await page.type('#input', text);
    await page.click('#send');
    await page.waitForFunction((n) => {
      const all = document.querySelectorAll('.assistant');
      return all.length > n && all[n].dataset.done;
    }, { timeout: 60000 }, before);
    return page.$$eval('.assistant', (els, n) => ({
      text: els[n].querySelector('.text').textContent,
      stats: els[n].querySelector('.stats').textContent,
      done: els[n].dataset.done,
    }), before);
  };

  const hostile = '<b>bold</b><script>window.pwned = 1</script>';
  const first = await turn(hostile);
  if (!first.text || first.done !== 'done') fail(`no reply to the first message: ${JSON.stringify(first)}`);
  if (!/^\d+ tokens, [\d.]+ tokens\/s, 0 cached$/.test(first.stats)) fail(`first stats: ${first.stats}`);
  seen.user_text = await page.$eval('.user .text', (el) => el.textContent);
  const second = await turn('And then?');
  const cached = Number((/(\d+) cached/.exec(second.stats) || [])[1]);
  if (!(cached > 0)) fail(`the second turn reused nothing: ${second.stats}`);
  const sent = requests[1].messages;
  if (sent.length !== 3 || sent[0].content !== hostile || sent[1].role !== 'assistant' ||
      sent[1].content !== first.text || sent[2].content !== 'And then?') {
    fail(`the second turn did not send the first: ${JSON.stringify(sent)}`);
  }
  if (!requests[1].stream) fail('the reply was not asked as a stream');
  seen.second_cached = cached;
  seen.width = await page.evaluate(() => document.documentElement.scrollWidth);
  await page.screenshot({ path: screenshot, fullPage: true });

  // Stop: a long reply cut after its first text.
  await set('#max-tokens', '1500');
  await page.type('#input', 'Tell me a long story.');
  await page.click('#send');
  await page.waitForFunction(() => {
    const all = document.querySelectorAll('.assistant');
    return all.length === 3 && all[2].querySelector('.text').textContent.length > 0;
  }, { timeout: 60000 });
  await page.click('#stop');
  await page.waitForFunction(() => document.querySelectorAll('.assistant')[2].dataset.done, { timeout: 10000 });
  seen.stopped = await page.$eval('.assistant:last-of-type', (el) => `${el.dataset.done}: ${el.querySelector('.stats').textContent}`);
  seen.send_enabled = await page.$eval('#send', (el) => !el.disabled);

  // New chat; then a reply that holds markup is shown as text.
  await page.click('#new-chat');
  seen.after_new_chat = await page.$$eval('#log > *', (els) => els.length);
  const markup = '<img src=x onerror="window.pwned = 2"><script>window.pwned = 3</script>&amp;';
  const chunk = (delta) => `data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta }] })}\n\n`;
  fake = chunk({ role: 'assistant', content: '' }) + chunk({ content: markup.slice(0, 20) }) +
         chunk({ content: markup.slice(20) }) + 'data: [DONE]\n\n';
  const shown = await turn('Hello');
  seen.markup_shown = shown.text === markup;
  seen.elements = await page.$$eval('#log img, #log script, #log b', (els) => els.length);
  seen.pwned = await page.evaluate(() => window.pwned === undefined ? 'no' : String(window.pwned));
  seen.outside = outside;
} finally {
  await browser.close();
}
console.log(JSON.stringify(seen));
