// Package sandbox is a local double of CAIR2's SOAP endpoint (docs/cair2.md
// says what it stands in for): the embedded registry a new user runs izdrop
// against, the target of the end-to-end tests and benchmarks, and a
// pre-flight check of a site's messages before CAIR's staging endpoint.
//
// It is not a yes-machine. It serves the CDC IIS web service in both codecs
// (2011 at /CATRN-WS/IISService, 2014 at /iisb/2014, each with its WSDL at
// ?wsdl), checks credentials (SecurityFault), size and single MSH
// (MessageTooLargeFault), validates each VXU as CAIR2 does - segment order,
// required fields, data types and dates, code tables and CVX/MVX pairs,
// MSH-11 = P, MSH-22 and RXA-11.4, PID-3.5, letters-only names - and
// answers in CAIR's ACK style: AA; AE with "Informational error" W ERRs
// when it stored the record anyway; AE with an E ERR and "MESSAGE REJECTED
// - ..." when it did not; AR for header problems.
//
// It keeps what it accepted by sending facility (MSH-4) and ORC-3, so an
// RXA-21 U or D of a known dose works and of an unknown one is rejected, and
// a second add of a stored dose is answered as a duplicate. A message
// received again with the same MSH-10 and content (a retry after a lost
// answer) gets its first ACK again and changes nothing: it is counted as a
// resend. One with a known MSH-10 but other content is processed as new and
// counted as a reused control id - a sender's bug the tests look for.
//
// For tests and benchmarks it can be slow or flaky - fixed and random
// latency, a delay on every new connection (a TLS handshake over a WAN), a
// share of calls answered with HTTP 503 or UnknownFault, connections
// dropped mid-answer, ACKs naming another message - set by Options or at
// run time with SetFaults - and it measures how long its submissions took
// (SubmitLatency). It shows what it received at /
// (HTML) and /status.json; those pages carry ids, codes and outcomes, never
// a patient's name, birth date, address or phone number.
package sandbox
