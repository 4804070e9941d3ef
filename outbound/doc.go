// Package outbound delivers VXU messages to a registry over the CDC IIS
// SOAP web service and returns what became of each: the step after
// transform and before archive.
//
// Transport: SOAP 1.2, document/literal, with the two codecs of the CDC
// IIS web service (docs/cair2.md) - the 2011 WSDL (urn:cdc:iisb:2011, CAIR2's and
// the default) and the 2014 WSDL (urn:cdc:iisb:2014) - each a request
// template and a response reader. The envelope is written here: the Go SOAP
// libraries are SOAP 1.1 code generators or unmaintained clients, and what
// the CDC service needs is two small documents per codec. SOAP faults become
// typed errors (*SecurityFault, *MessageTooLargeFault,
// *UnsupportedOperationFault, *UnknownFault), as do HTTP statuses
// (*HTTPError) and network failures (*TransportError).
//
// Delivery (Client.Deliver) applies the policy per outcome class:
//   - an ACK is final, whatever it says; a MessageTooLargeFault is a final
//     rejection. Neither is ever sent again.
//   - UnknownFault, HTTP 5xx, timeouts, resets, unreadable answers and ACKs
//     whose MSA-2 names another message are transient: retried with exponential backoff and full jitter, with the
//     same bytes (so the same MSH-10), within a time budget and an attempt
//     cap. A run of them across different messages opens the endpoint's
//     circuit breaker; one message's own retries do not. A message the
//     registry answered on every attempt with a processing failure (a SOAP
//     fault, HTTP 500) while it answered other messages gets that failure as
//     its final outcome (ErrMessageFailed): it would otherwise hold its
//     patient's later records forever. Timeouts, dropped connections, 503s
//     and throttling never end that way.
//   - SecurityFault means the registry refused the credentials: not an
//     outage, so no retry and no probe. The client stops sending
//     (ErrCredentialsRefused) until told the credentials work again
//     (ClearRefused, after `izdrop ping -auth` passes): every further
//     attempt would be another failed login, and may lock the account.
//   - UnsupportedOperationFault and HTTP 4xx mean the endpoint is wrong:
//     the breaker opens at once.
//
// While the breaker is open nothing is sent. After a cool-down a
// connectivityTest probes the endpoint; if it answers, one message goes
// through as a trial, and its fate closes or reopens the breaker (with a
// doubled cool-down). A message that cannot be delivered - breaker
// open, budget spent, stop requested - is returned with ErrNotDelivered:
// the caller keeps it pending. Nothing is marked failed because the registry
// was down.
//
// Each Client owns one HTTP transport: a pool of kept-alive connections
// sized to the endpoint's concurrency, so a steady flow pays one TLS
// handshake per connection, not per message. A semaphore bounds calls in
// flight and an optional token bucket their rate.
package outbound
