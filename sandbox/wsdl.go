package sandbox

import "strings"

// The WSDLs describe what the sandbox serves, with the CDC element and
// operation names of each generation; the address is filled in.

func wsdl2011(addr string) string {
	return strings.ReplaceAll(`<?xml version="1.0" encoding="UTF-8"?>
<definitions name="IISService" targetNamespace="urn:cdc:iisb:2011"
  xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:tns="urn:cdc:iisb:2011"
  xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
  <documentation>izdrop sandbox: CDC IIS 2011 SOAP web service (a local double of CAIR2).</documentation>
  <types>
    <xsd:schema targetNamespace="urn:cdc:iisb:2011" elementFormDefault="qualified">
      <xsd:element name="connectivityTest"><xsd:complexType><xsd:sequence>
        <xsd:element name="echoBack" type="xsd:string" nillable="true"/></xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="connectivityTestResponse"><xsd:complexType><xsd:sequence>
        <xsd:element name="return" type="xsd:string" nillable="true"/></xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="submitSingleMessage"><xsd:complexType><xsd:sequence>
        <xsd:element name="username" type="xsd:string" minOccurs="0" nillable="true"/>
        <xsd:element name="password" type="xsd:string" minOccurs="0" nillable="true"/>
        <xsd:element name="facilityID" type="xsd:string" minOccurs="0" nillable="true"/>
        <xsd:element name="hl7Message" type="xsd:string" minOccurs="0" nillable="true"/></xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="submitSingleMessageResponse"><xsd:complexType><xsd:sequence>
        <xsd:element name="return" type="xsd:string" minOccurs="0" nillable="true"/></xsd:sequence></xsd:complexType></xsd:element>
      <xsd:complexType name="faultType"><xsd:sequence>
        <xsd:element name="Code" type="xsd:integer" minOccurs="0"/>
        <xsd:element name="Reason" type="xsd:string" minOccurs="0"/>
        <xsd:element name="Detail" type="xsd:string" minOccurs="0"/></xsd:sequence></xsd:complexType>
      <xsd:element name="fault" type="tns:faultType"/>
      <xsd:element name="SecurityFault" type="tns:faultType"/>
      <xsd:element name="MessageTooLargeFault" type="tns:faultType"/>
      <xsd:element name="UnsupportedOperationFault" type="tns:faultType"/>
    </xsd:schema>
  </types>
  <message name="connectivityTest_Message"><part name="parameters" element="tns:connectivityTest"/></message>
  <message name="connectivityTestResponse_Message"><part name="parameters" element="tns:connectivityTestResponse"/></message>
  <message name="submitSingleMessage_Message"><part name="parameters" element="tns:submitSingleMessage"/></message>
  <message name="submitSingleMessageResponse_Message"><part name="parameters" element="tns:submitSingleMessageResponse"/></message>
  <message name="UnknownFault_Message"><part name="fault" element="tns:fault"/></message>
  <message name="SecurityFault_Message"><part name="fault" element="tns:SecurityFault"/></message>
  <message name="MessageTooLargeFault_Message"><part name="fault" element="tns:MessageTooLargeFault"/></message>
  <message name="UnsupportedOperationFault_Message"><part name="fault" element="tns:UnsupportedOperationFault"/></message>
  <portType name="IIS_PortType">
    <operation name="connectivityTest">
      <input message="tns:connectivityTest_Message"/><output message="tns:connectivityTestResponse_Message"/>
      <fault name="UnknownFault" message="tns:UnknownFault_Message"/>
      <fault name="UnsupportedOperationFault" message="tns:UnsupportedOperationFault_Message"/>
    </operation>
    <operation name="submitSingleMessage">
      <input message="tns:submitSingleMessage_Message"/><output message="tns:submitSingleMessageResponse_Message"/>
      <fault name="UnknownFault" message="tns:UnknownFault_Message"/>
      <fault name="SecurityFault" message="tns:SecurityFault_Message"/>
      <fault name="MessageTooLargeFault" message="tns:MessageTooLargeFault_Message"/>
    </operation>
  </portType>
  <binding name="client_Binding_Soap12" type="tns:IIS_PortType">
    <soap12:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <operation name="connectivityTest"><soap12:operation soapAction="urn:cdc:iisb:2011:connectivityTest"/>
      <input><soap12:body use="literal"/></input><output><soap12:body use="literal"/></output></operation>
    <operation name="submitSingleMessage"><soap12:operation soapAction="urn:cdc:iisb:2011:submitSingleMessage"/>
      <input><soap12:body use="literal"/></input><output><soap12:body use="literal"/></output></operation>
  </binding>
  <service name="client_Service">
    <port name="client_Port_Soap12" binding="tns:client_Binding_Soap12"><soap12:address location="ADDRESS"/></port>
  </service>
</definitions>
`, "ADDRESS", addr)
}

func wsdl2014(addr string) string {
	return strings.ReplaceAll(`<?xml version="1.0" encoding="UTF-8"?>
<definitions name="IISService" targetNamespace="urn:cdc:iisb:2014"
  xmlns="http://schemas.xmlsoap.org/wsdl/" xmlns:iis="urn:cdc:iisb:2014"
  xmlns:soap12="http://schemas.xmlsoap.org/wsdl/soap12/" xmlns:xsd="http://www.w3.org/2001/XMLSchema">
  <documentation>izdrop sandbox: CDC IIS 2014 SOAP web service (a local double of CAIR2).</documentation>
  <types>
    <xsd:schema targetNamespace="urn:cdc:iisb:2014" elementFormDefault="qualified">
      <xsd:element name="ConnectivityTestRequest"><xsd:complexType><xsd:sequence>
        <xsd:element name="EchoBack" type="xsd:string" minOccurs="0" nillable="true"/></xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="ConnectivityTestResponse"><xsd:complexType><xsd:sequence>
        <xsd:element name="EchoBack" type="xsd:string" minOccurs="0" nillable="true"/></xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="SubmitSingleMessageRequest"><xsd:complexType><xsd:sequence>
        <xsd:element name="Username" type="xsd:string" minOccurs="0" nillable="true"/>
        <xsd:element name="Password" type="xsd:string" minOccurs="0" nillable="true"/>
        <xsd:element name="FacilityID" type="xsd:string" minOccurs="0" nillable="true"/>
        <xsd:element name="Hl7Message" type="xsd:string"/></xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="SubmitSingleMessageResponse"><xsd:complexType><xsd:sequence>
        <xsd:element name="Hl7Message" type="xsd:string"/></xsd:sequence></xsd:complexType></xsd:element>
      <xsd:complexType name="FaultType"><xsd:sequence>
        <xsd:element name="Code" type="xsd:integer" minOccurs="0"/>
        <xsd:element name="Reason" type="xsd:string" minOccurs="0"/>
        <xsd:element name="Detail" type="xsd:string" minOccurs="0"/></xsd:sequence></xsd:complexType>
      <xsd:element name="UnknownFault" type="iis:FaultType"/>
      <xsd:element name="SecurityFault" type="iis:FaultType"/>
      <xsd:element name="UnsupportedOperationFault" type="iis:FaultType"/>
      <xsd:element name="MessageTooLargeFault"><xsd:complexType><xsd:complexContent><xsd:extension base="iis:FaultType"><xsd:sequence>
        <xsd:element name="Size" type="xsd:unsignedLong"/><xsd:element name="MaxSize" type="xsd:unsignedLong"/>
      </xsd:sequence></xsd:extension></xsd:complexContent></xsd:complexType></xsd:element>
    </xsd:schema>
  </types>
  <message name="ConnectivityTestRequestMessage"><part name="requestParameters" element="iis:ConnectivityTestRequest"/></message>
  <message name="ConnectivityTestResponseMessage"><part name="responseParameters" element="iis:ConnectivityTestResponse"/></message>
  <message name="SubmitSingleMessageRequestMessage"><part name="requestParameters" element="iis:SubmitSingleMessageRequest"/></message>
  <message name="SubmitSingleMessageResponseMessage"><part name="responseParameters" element="iis:SubmitSingleMessageResponse"/></message>
  <message name="UnknownFaultMessage"><part name="fault" element="iis:UnknownFault"/></message>
  <message name="SecurityFaultMessage"><part name="fault" element="iis:SecurityFault"/></message>
  <message name="MessageTooLargeFaultMessage"><part name="fault" element="iis:MessageTooLargeFault"/></message>
  <message name="UnsupportedOperationFaultMessage"><part name="fault" element="iis:UnsupportedOperationFault"/></message>
  <portType name="IISPortType">
    <operation name="ConnectivityTest">
      <input message="iis:ConnectivityTestRequestMessage"/><output message="iis:ConnectivityTestResponseMessage"/>
      <fault name="UnsupportedOperationFault" message="iis:UnsupportedOperationFaultMessage"/>
    </operation>
    <operation name="SubmitSingleMessage">
      <input message="iis:SubmitSingleMessageRequestMessage"/><output message="iis:SubmitSingleMessageResponseMessage"/>
      <fault name="UnknownFault" message="iis:UnknownFaultMessage"/>
      <fault name="SecurityFault" message="iis:SecurityFaultMessage"/>
      <fault name="MessageTooLargeFault" message="iis:MessageTooLargeFaultMessage"/>
    </operation>
  </portType>
  <binding name="IISSoapBinding" type="iis:IISPortType">
    <soap12:binding style="document" transport="http://www.w3.org/2003/05/soap/bindings/HTTP/"/>
    <operation name="ConnectivityTest"><soap12:operation soapAction="urn:cdc:iisb:2014:IISPortType:ConnectivityTestRequest" style="document"/>
      <input><soap12:body use="literal"/></input><output><soap12:body use="literal"/></output></operation>
    <operation name="SubmitSingleMessage"><soap12:operation soapAction="urn:cdc:iisb:2014:IISPortType:SubmitSingleMessageRequest" style="document"/>
      <input><soap12:body use="literal"/></input><output><soap12:body use="literal"/></output></operation>
  </binding>
  <service name="IISService">
    <port name="IISPort" binding="iis:IISSoapBinding"><soap12:address location="ADDRESS"/></port>
  </service>
</definitions>
`, "ADDRESS", addr)
}
