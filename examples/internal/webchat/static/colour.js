// Nickname colours. Each nickname gets a hue from a hash of all of it, so
// that nicknames which differ in one character (user1 and user2, node1-ann
// and node2-bob) differ in colour as much as any two: a sum over the
// characters, as the page had, moves by a degree or two for a last
// character one higher.

const encoder = new TextEncoder();

// hue returns the nickname's hue, an integer from 0 to 359 degrees.
export function hue(nickname) {
  // FNV-1a, 32 bits, over the UTF-8 bytes: the same hue in every browser.
  let h = 0x811c9dc5;
  for (const b of encoder.encode(nickname)) {
    h ^= b;
    h = Math.imul(h, 0x01000193);
  }
  // FNV-1a's last byte changes the high bits little, and the hue comes from
  // them: MurmurHash3's finaliser makes every input bit change each output
  // bit with a probability of about one half.
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return Math.floor(((h >>> 0) / 2 ** 32) * 360);
}
