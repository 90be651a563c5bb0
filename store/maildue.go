package store

import (
	"context"
	"fmt"

	"github.com/lib/pq"

	"koerier/domain"
)

// DueOnChannel lists an environment's messages on a channel of its own (e-mail, bank)
// that are due to send, by number: the environment's own send/receive of that channel
// tells their workflows (rule 12). Read through messages_due, as DueMessages is,
// narrowed to the environment and the channel. Also, as DueMessages does, an older
// version marked do-not-send whose delivery has no known outcome: it is looked up
// (rule 11) before the version rules refuse it, and the newer version waits for that.
func (s *Store) DueOnChannel(ctx context.Context, envID int64, channel domain.Channel, limit int) ([]int64, error) {
	out := []int64{}
	if err := s.db.SelectContext(ctx, &out, `
		SELECT number FROM (
			(SELECT m.number FROM messages m JOIN environments e ON e.id = m.environment_id
			 WHERE m.direction = $1 AND m.status = ANY($2) AND NOT m.do_not_send AND m.channel = $3 AND m.environment_id = $4
				AND `+notHeldByGoneEnvironment+`
			 ORDER BY m.number LIMIT $5)
			UNION
			(SELECT m.number FROM deliveries d JOIN messages m ON m.number = d.message_number AND m.attempt = d.attempt
			 JOIN environments e ON e.id = m.environment_id
			 WHERE `+openDelivery+` AND m.do_not_send AND m.status = ANY($2) AND m.channel = $3 AND m.environment_id = $4
				AND `+notHeldByGoneEnvironment+`
			 ORDER BY m.number LIMIT $5)
		) due ORDER BY number LIMIT $5`, domain.DirectionOut, pq.Array(domain.DueStatuses()), string(channel), envID, limit); err != nil {
		return nil, fmt.Errorf("list due %s messages of environment %d: %w", channel, envID, err)
	}
	return out, nil
}
