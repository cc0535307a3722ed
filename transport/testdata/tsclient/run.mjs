// What every test client here shares: run main under an overall time
// limit. Exit codes: 0 when main resolves, 1 when it rejects (the message
// on stderr), 2 when the limit passes first.
export function run(main, timeoutMs) {
  const timer = setTimeout(() => {
    process.stderr.write(`timeout after ${timeoutMs}ms\n`);
    process.exit(2);
  }, timeoutMs);
  main().then(
    () => {
      clearTimeout(timer);
      process.exit(0);
    },
    (err) => {
      process.stderr.write(`${err && err.message ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
