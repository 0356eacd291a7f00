// Did-you-mean hints for error messages that name an unknown key, path or value.

/** " (did you mean 'x'?)" for a near miss among `known`: case-insensitive edit distance <= 2; '' otherwise. */
export function suggest(k: string, known: readonly string[]): string {
  let best = '', bd = 3;
  for (const a of known) {
    const d = editDistance(k.toLowerCase(), a.toLowerCase());
    if (d < bd) { bd = d; best = a; }
  }
  return best ? ` (did you mean '${best}'?)` : '';
}

export function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) dp[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      dp[i]![j] = Math.min(dp[i - 1]![j]! + 1, dp[i]![j - 1]! + 1, dp[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return dp[a.length]![b.length]!;
}
