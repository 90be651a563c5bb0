package store

import (
	"context"
	"fmt"

	"github.com/lib/pq"

	"koerier/domain"
)

// DueMail lists an environment's e-invoices that are due to send, by number: the
// environment's own e-mail send/receive tells their workflows (rule 12). Read through
// messages_due, as DueMessages is, narrowed to the environment and the e-mail channel.
func (s *Store) DueMail(ctx context.Context, envID int64, limit int) ([]int64, error) {
	out := []int64{}
	if err := s.db.SelectContext(ctx, &out, `
		SELECT m.number FROM messages m JOIN environments e ON e.id = m.environment_id
		WHERE m.direction = $1 AND m.status = ANY($2) AND NOT m.do_not_send AND m.channel = $3 AND m.environment_id = $4
			AND `+notHeldByGoneEnvironment+`
		ORDER BY m.number LIMIT $5`, domain.DirectionOut, pq.Array(domain.DueStatuses()), string(domain.ChannelEmail), envID, limit); err != nil {
		return nil, fmt.Errorf("list due e-invoices of environment %d: %w", envID, err)
	}
	return out, nil
}
