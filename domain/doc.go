// Package domain holds Koerier's rules of the trade: the statuses of an outgoing
// message and their order, what every Digipoort status code means, which version of a
// declaration may be sent or restored, and what clean-up may remove.
//
// It knows nothing of Temporal or SQL so that the workflows, the activities, the store
// and the command line all decide the same way.
//
// "rule N" in a comment anywhere in Koerier means rule N of docs/rules.md, which says
// for each domain rule what it requires, why, and where it is enforced.
package domain
