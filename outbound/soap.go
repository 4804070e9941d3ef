package outbound

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// SOAP12 is the SOAP 1.2 envelope namespace.
const SOAP12 = "http://www.w3.org/2003/05/soap-envelope"

// Codec is one generation of the CDC IIS WSDL.
type Codec struct {
	Name      string // "2011" or "2014"
	Namespace string
	submit    op
	connect   op
}

type op struct {
	action   string // SOAP 1.2 action (Content-Type parameter)
	request  string // request element
	fields   []string
	response string // response element
	result   string // the element holding the answer in the response
}

// The two codecs of the CDC IIS web service (docs/cair2.md).
var (
	Codec2011 = Codec{Name: "2011", Namespace: "urn:cdc:iisb:2011",
		submit: op{action: "urn:cdc:iisb:2011:submitSingleMessage", request: "submitSingleMessage",
			fields: []string{"username", "password", "facilityID", "hl7Message"}, response: "submitSingleMessageResponse", result: "return"},
		connect: op{action: "urn:cdc:iisb:2011:connectivityTest", request: "connectivityTest",
			fields: []string{"echoBack"}, response: "connectivityTestResponse", result: "return"},
	}
	Codec2014 = Codec{Name: "2014", Namespace: "urn:cdc:iisb:2014",
		submit: op{action: "urn:cdc:iisb:2014:IISPortType:SubmitSingleMessageRequest", request: "SubmitSingleMessageRequest",
			fields: []string{"Username", "Password", "FacilityID", "Hl7Message"}, response: "SubmitSingleMessageResponse", result: "Hl7Message"},
		connect: op{action: "urn:cdc:iisb:2014:IISPortType:ConnectivityTestRequest", request: "ConnectivityTestRequest",
			fields: []string{"EchoBack"}, response: "ConnectivityTestResponse", result: "EchoBack"},
	}
)

// CodecByName returns "2011" or "2014".
func CodecByName(name string) (Codec, error) {
	switch name {
	case "", "2011":
		return Codec2011, nil
	case "2014":
		return Codec2014, nil
	}
	return Codec{}, fmt.Errorf("codec %q: use 2011 or 2014", name)
}

// ContentType is the Content-Type of a request for op.
func contentType(action string) string {
	return `application/soap+xml; charset=UTF-8; action="` + action + `"`
}

// envelope writes a request. Values are XML-escaped; CR (the HL7 segment
// end) is written as &#xD; so that XML end-of-line handling cannot turn it
// into LF on the way.
func (c Codec) envelope(o op, values ...string) []byte {
	var b bytes.Buffer
	n := 512
	for _, v := range values {
		n += len(v) + len(v)/8 // an HL7 message's segment ends are escaped, 5 bytes each
	}
	b.Grow(n)
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<soap:Envelope xmlns:soap="` + SOAP12 + `" xmlns:iis="` + c.Namespace + `"><soap:Header/><soap:Body><iis:` + o.request + `>`)
	for i, f := range o.fields {
		b.WriteString("<iis:" + f + ">")
		escapeText(&b, values[i])
		b.WriteString("</iis:" + f + ">")
	}
	b.WriteString(`</iis:` + o.request + `></soap:Body></soap:Envelope>`)
	return b.Bytes()
}

// escapeText writes s as xml.EscapeText does, byte for byte, without its
// copy and its per-rune work on the ASCII that HL7 messages are made of:
// from the first byte that is not printable ASCII (nor one of the escaped
// characters), the rest goes to xml.EscapeText, which also replaces what
// XML cannot carry.
func escapeText(b *bytes.Buffer, s string) {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch c := s[i]; c {
		case '\r':
			esc = "&#xD;"
		case '\n':
			esc = "&#xA;"
		case '\t':
			esc = "&#x9;"
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			esc = "&#34;"
		case '\'':
			esc = "&#39;"
		default:
			if c >= 0x20 && c < 0x7f {
				continue
			}
			b.WriteString(s[last:i])
			xml.EscapeText(b, []byte(s[i:]))
			return
		}
		b.WriteString(s[last:i])
		b.WriteString(esc)
		last = i + 1
	}
	b.WriteString(s[last:])
}

// SubmitRequest is the envelope of a submitSingleMessage call.
func (c Codec) SubmitRequest(user, password, facility, hl7 string) []byte {
	return c.envelope(c.submit, user, password, facility, hl7)
}

// ConnectivityRequest is the envelope of a connectivityTest call.
func (c Codec) ConnectivityRequest(echo string) []byte {
	return c.envelope(c.connect, echo)
}

// FaultInfo is what every SOAP fault carries.
type FaultInfo struct {
	Code       string // the fault's own Code (an integer in the CDC schema)
	Reason     string
	Detail     string
	SOAPCode   string // env:Code/env:Value, e.g. soap:Receiver
	HTTPStatus int
}

func (f FaultInfo) describe(kind string) string {
	s := kind
	if f.Reason != "" {
		s += ": " + f.Reason
	}
	if f.Detail != "" && f.Detail != f.Reason {
		s += " (" + f.Detail + ")"
	}
	return s
}

// SecurityFault: the username, password or facility ID was refused.
type SecurityFault struct{ FaultInfo }

func (e *SecurityFault) Error() string { return e.describe("SecurityFault") }

// MessageTooLargeFault: the message is over the registry's size limit.
type MessageTooLargeFault struct {
	FaultInfo
	Size, MaxSize int64
}

func (e *MessageTooLargeFault) Error() string {
	s := e.describe("MessageTooLargeFault")
	if e.MaxSize > 0 {
		s += fmt.Sprintf(" [%d bytes, limit %d]", e.Size, e.MaxSize)
	}
	return s
}

// UnsupportedOperationFault: the endpoint does not offer the operation
// (usually the wrong codec or URL).
type UnsupportedOperationFault struct{ FaultInfo }

func (e *UnsupportedOperationFault) Error() string { return e.describe("UnsupportedOperationFault") }

// UnknownFault: any other fault; the registry had a problem of its own.
type UnknownFault struct{ FaultInfo }

func (e *UnknownFault) Error() string { return e.describe("UnknownFault") }

// HTTPError is an answer that was neither a SOAP response nor a fault.
type HTTPError struct {
	Status int
	Body   string // the start of the body, for the operator
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("HTTP %d %s", e.Status, strings.TrimSpace(e.Body))
}

// ErrBadResponse is wrapped when a 200 answer cannot be read.
var ErrBadResponse = errors.New("unreadable SOAP response")

// parseResponse reads a response envelope: the text of the operation's
// result element, or the typed fault.
func (c Codec) parseResponse(o op, body []byte, status int) (string, error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	var path []string
	var result strings.Builder
	inResult, sawResponse := false, false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("%w: %v", ErrBadResponse, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			path = append(path, t.Name.Local)
			if t.Name.Local == "Fault" && t.Name.Space == SOAP12 {
				return "", parseFault(d, status)
			}
			if t.Name.Local == o.response {
				sawResponse = true
			}
			if sawResponse && t.Name.Local == o.result && len(path) >= 2 && path[len(path)-2] == o.response {
				inResult = true
			}
		case xml.EndElement:
			if inResult && t.Name.Local == o.result {
				return result.String(), nil
			}
			path = path[:len(path)-1]
		case xml.CharData:
			if inResult {
				result.Write(t)
			}
		}
	}
	if status != 200 {
		return "", &HTTPError{Status: status, Body: snippet(body)}
	}
	if sawResponse {
		return "", fmt.Errorf("%w: %s has no %s", ErrBadResponse, o.response, o.result)
	}
	return "", fmt.Errorf("%w: no %s in the body", ErrBadResponse, o.response)
}

// parseFault reads a SOAP 1.2 Fault whose start element was just read.
func parseFault(d *xml.Decoder, status int) error {
	var f struct {
		Code   string `xml:"Code>Value"`
		Reason string `xml:"Reason>Text"`
		Detail struct {
			Inner []byte `xml:",innerxml"`
		} `xml:"Detail"`
	}
	if err := d.DecodeElement(&f, &xml.StartElement{Name: xml.Name{Space: SOAP12, Local: "Fault"}}); err != nil {
		return &UnknownFault{FaultInfo{Reason: "unreadable SOAP fault: " + err.Error(), HTTPStatus: status}}
	}
	info := FaultInfo{SOAPCode: f.Code, Reason: strings.TrimSpace(f.Reason), HTTPStatus: status}
	// The detail names the fault: its first element.
	var det struct {
		XMLName xml.Name
		Code    string `xml:"Code"`
		Reason  string `xml:"Reason"`
		Detail  string `xml:"Detail"`
		Size    string `xml:"Size"`
		MaxSize string `xml:"MaxSize"`
	}
	if len(bytes.TrimSpace(f.Detail.Inner)) > 0 {
		if err := xml.Unmarshal(f.Detail.Inner, &det); err == nil {
			if det.Code != "" {
				info.Code = strings.TrimSpace(det.Code)
			}
			if det.Reason != "" {
				info.Reason = strings.TrimSpace(det.Reason)
			}
			info.Detail = strings.TrimSpace(det.Detail)
		}
	}
	switch det.XMLName.Local {
	case "SecurityFault":
		return &SecurityFault{info}
	case "MessageTooLargeFault":
		size, _ := strconv.ParseInt(strings.TrimSpace(det.Size), 10, 64)
		max, _ := strconv.ParseInt(strings.TrimSpace(det.MaxSize), 10, 64)
		return &MessageTooLargeFault{FaultInfo: info, Size: size, MaxSize: max}
	case "UnsupportedOperationFault":
		return &UnsupportedOperationFault{info}
	}
	return &UnknownFault{info}
}

func snippet(b []byte) string {
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
