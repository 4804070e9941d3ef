package outbound

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/izdrop/izdrop/ack"
)

// Explain turns a call's error into what an operator should check, for
// `izdrop ping` and alerts. Registry text is redacted.
func Explain(err error) string {
	if err == nil {
		return "ok"
	}
	var (
		sec   *SecurityFault
		large *MessageTooLargeFault
		unsup *UnsupportedOperationFault
		unk   *UnknownFault
		he    *HTTPError
		te    *TransportError
		dns   *net.DNSError
	)
	switch {
	case errors.As(err, &sec):
		return "the registry refused the credentials (SecurityFault): check username, facility_id and the password in password_env/password_file; sending to this endpoint is stopped until they work"
	case errors.As(err, &large):
		return "the registry refused the message as too large (MessageTooLargeFault): " + ack.Redact(large.Error())
	case errors.As(err, &unsup):
		return "the endpoint does not offer this operation (UnsupportedOperationFault): check the url and the codec (2011 for CAIR2)"
	case errors.As(err, &unk):
		return "the registry reported a problem of its own (UnknownFault): " + ack.Redact(unk.Error()) + "; izdrop retries"
	case errors.As(err, &dns):
		return fmt.Sprintf("DNS: the host %q cannot be resolved: check the url and this machine's DNS", dns.Name)
	case errors.As(err, &te):
		switch te.Op {
		case "tls":
			return "TLS: the registry's certificate is not trusted or does not match its name (" + tlsReason(te.Err) + "); add its CA with ca_file if it is a private one - verification is never turned off"
		case "connect":
			return "connect: nothing answers at that address and port (refused or unreachable): check the url, firewalls and proxies"
		case "timeout":
			return "timeout: the registry did not answer within the configured time (connect_timeout / read_timeout)"
		}
		return "the connection failed mid-call (" + te.Op + "): " + te.Err.Error()
	case errors.As(err, &he):
		switch {
		case he.Status == 401 || he.Status == 403:
			return fmt.Sprintf("HTTP %d: the server refused access before SOAP: check credentials, client certificate or IP allow-lists", he.Status)
		case he.Status == 404:
			return "HTTP 404: no service at that path: check the url (CAIR2: .../CATRN-WS/IISService or .../CAPRD-WS/IISService)"
		case he.Status >= 500:
			return fmt.Sprintf("HTTP %d: the registry is down or overloaded; izdrop retries and keeps files waiting", he.Status)
		}
		return fmt.Sprintf("HTTP %d: unexpected answer: %s", he.Status, ack.Redact(he.Body))
	case errors.Is(err, ErrBadResponse):
		return "the answer is not a SOAP response of this codec: check the url and codec (" + ack.Redact(err.Error()) + ")"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout: no answer in time"
	}
	return ack.Redact(err.Error())
}

func tlsReason(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 && i+2 < len(s) {
		return s[i+2:]
	}
	return s
}
