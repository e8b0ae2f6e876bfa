// Staying in the room across reloads: the nickname is remembered on the
// device (localStorage, as the join form already does), the room is in the
// address (#room, the invite link), and a mark says the user is in it, so
// that a reload or the same address opened again rejoins at once. Leave
// removes the mark: the next load shows the join form again.
const STAY_KEY = "chatroom.stay";

function store() {
  try {
    return window.localStorage;
  } catch {
    return undefined; // storage disabled: a reload shows the join form
  }
}

// stayIn remembers that the user is in the room under that nickname.
export function stayIn(nickname, room) {
  try {
    store()?.setItem(STAY_KEY, JSON.stringify({ nickname, room }));
  } catch {
    // Full or disabled: not remembered.
  }
}

// forget is Leave.
export function forget() {
  try {
    store()?.removeItem(STAY_KEY);
  } catch {
    // As above.
  }
}

// stayed returns the nickname to rejoin room with, if the user was in it
// and did not leave; "" otherwise.
export function stayed(room) {
  try {
    const s = JSON.parse(store()?.getItem(STAY_KEY) || "null");
    if (s && typeof s.nickname === "string" && s.room === room) return s.nickname;
  } catch {
    // Malformed: as if not remembered.
  }
  return "";
}
