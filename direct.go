package chatroom

import "context"

// WithDirectMessages lets clients send a message to one nickname. A client
// adds "to":
//
//	{"message":"see you at 6","to":"ann"}
//
// Every connection of ann, and the sender's connection (not its other
// connections), receive
//
//	{"type":"direct","id":12,"time":"…","nickname":"sei","to":"ann","message":"see you at 6"}
//
// and nobody else does. If no member is named ann, the sender receives an
// error frame with code StatusNoSuchMember (4404), whatever WithErrorFrames
// says, and stays:
//
//	{"type":"error","id":13,"time":"…","message":"no such member: ann","code":4404}
//
// The message hook sees direct messages too, with Type TypeDirect and To set.
// Without this option a client frame with a "to" field is refused (1007
// "direct messages are not enabled") rather than broadcast to everyone.
// Direct messages are never kept in the history. It turns on WithEnvelope.
func WithDirectMessages() Option {
	return func(c *config) { c.direct = true }
}

// SendTo sends msg to every connection of the member named nickname, as the
// tutorial's send_personal_message does: for bots and server notifications.
// With the envelope its type defaults to TypeDirect and To to nickname. It
// returns the ID the frame carries (see Message.ID; 0 without the envelope
// or a history), ErrNoSuchMember if nobody has that nickname, and
// ErrRoomClosed once Shutdown or Close has begun. It never waits for a
// socket; in a cluster it waits as Broadcast does.
func (rm *Room) SendTo(ctx context.Context, nickname string, msg Message) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if msg.Type == "" {
		msg.Type = TypeDirect
		if msg.To == "" {
			msg.To = nickname
		}
	}
	if err := rm.present(nickname); err != nil {
		return 0, err
	}
	return rm.publish(ctx, post{msg: msg, to: nickname})
}

// present returns ErrRoomClosed once the room is closed, ErrNoSuchMember if
// nobody on any node has the nickname, and nil otherwise.
func (rm *Room) present(nickname string) error {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	switch {
	case rm.closed:
		return ErrRoomClosed
	case !rm.link.presentLocked(nickname):
		return ErrNoSuchMember
	}
	return nil
}

// sendDirect delivers a member's direct message p to the recipient's
// connections and echoes it to the sender's, or answers the sender with an
// error frame if the recipient is absent.
func (rm *Room) sendDirect(p post) error {
	from := p.sender
	switch err := rm.present(p.msg.To); err {
	case nil:
		p.to = p.msg.To
		_, err := rm.publish(from.ctx, p)
		return err
	case ErrNoSuchMember:
		answer := errorFrame(StatusNoSuchMember, "no such member: "+p.msg.To)
		rm.refuse(from, p.key, p.ref, &answer)
		return nil
	default:
		return err
	}
}
