#!/usr/bin/env python3
"""An independent WUS 2.0 client (zeep + python-xmlsec + lxml), driven by Logius' WSDLs,
against a Digipoort endpoint: in the suite, the simulator (see interop_test.go).

It calls every operation of the three services with a WS-Addressing header and a
WS-Security signature made by xmlsec, verifies every signed answer with xmlsec against
the endpoint's signing certificate, lets zeep parse it in strict mode and validates the
Body payload explicitly against the XSD with lxml. Then it sends malformed requests,
each signed correctly so that the only thing wrong is the one mutation, and records
what came back. It prints one JSON report on stdout and leaves the verdict to the
caller; the exit status is 0 whenever the report was written.

Nothing here shares code with koerier's Go client or simulator: that is the point.
"""

import argparse
import base64
import datetime
import json
import os
import sys
import time
import traceback
import uuid
from urllib.parse import urlparse

try:
    # lxml before xmlsec: the other way round, python-xmlsec's libxml2 IO callbacks
    # break lxml's loading of files by name once an XMLSchema exists (XMLSyntaxError
    # "<no detail available>" on a well-formed WSDL). Files are also read as bytes below.
    from lxml import etree
    from lxml.etree import QName
    import requests
    import xmlsec
    import zeep
    from zeep.exceptions import Fault, SignatureVerificationFailed
    from zeep.wsa import WsAddressingPlugin
    from zeep.wsdl.utils import get_or_create_header
    from zeep.wsse import signature as zsig
    from zeep.wsse.utils import WSU, get_security_header
except ImportError as exc:  # the Go test checks this first; this is for a run by hand
    print(f"interop.py: {exc}: run ./scripts/ensure-tools.sh (installs python3-zeep and python3-xmlsec)", file=sys.stderr)
    sys.exit(3)

NS_KV = "http://logius.nl/digipoort/koppelvlakservices/1.2/"
NS_SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
NS_WSA = "http://www.w3.org/2005/08/addressing"
NS_WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
NS_WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"
NS_WSDL = "http://schemas.xmlsoap.org/wsdl/"
NS_WSAW = "http://www.w3.org/2006/05/addressing/wsdl"
XSD_NAME = "digipoort-koppelvlak-1.2.xsd"
AUTORISATIE_ADRES = "http://geenausp.nl"  # what every public WUS client sends (NOTES.md)

SERVICES = {
    # key: (WSDL file, fault detail element)
    "aanleverservice": ("AanleverService_V1_2.wsdl", "aanleverFault"),
    "statusinformatieservice": ("StatusinformatieService_V1_2.wsdl", "statusinformatieFault"),
    "ophaalservice": ("OphaalService_V1_2.wsdl", "ophaalFault"),
}


def xsd_time(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def local(el):
    return QName(el).localname if isinstance(el.tag, str) else None


def elements(el):
    return [c for c in el if isinstance(c.tag, str)]


class SpecTransport(zeep.Transport):
    """A zeep transport over the mutual-TLS session that serves the XSD from the spec
    directory and keeps the last request and response for the explicit checks.

    The WSDLs import the XSD from /cpl/digipoort-koppelvlak-1.2.xsd, a path on Logius'
    conformance server; zeep resolves it against the WSDL's file name to that absolute
    local path, which does not exist here."""

    def __init__(self, spec_dir, session):
        super().__init__(session=session, operation_timeout=30)
        self.spec_dir = spec_dir
        self.last_request = None
        self.last_response = None

    def load(self, url):
        if os.path.basename(urlparse(url).path) == XSD_NAME:
            with open(os.path.join(self.spec_dir, XSD_NAME), "rb") as fh:
                return fh.read()
        return super().load(url)

    def post(self, address, message, headers):
        self.last_request, self.last_response = message, None
        self.last_response = super().post(address, message, headers)
        return self.last_response


class WusSignature(zsig.BinarySignature):
    """zeep's BinarySignature with what WUS requires on top.

    zeep signs only the Body and a Timestamp that someone else must add; Digipoort
    requires a Timestamp and a signature over Body, Timestamp and every WS-Addressing
    header (the WSDL's SignedParts), exclusive C14N, SHA-1 digests, RSA-SHA1, and the
    certificate as BinarySecurityToken referenced from KeyInfo. This does the same
    steps as zeep's _signature_prepare/_sign_envelope_with_key_binary with those
    references added, using zeep's helpers and xmlsec for the cryptography.

    verify() checks answers against the endpoint's signing certificate (zeep's own
    verify would use our client certificate) and records what it found in .last."""

    def __init__(self, key_file, cert_file, signing_cert_file):
        super().__init__(key_file, cert_file)
        with open(signing_cert_file, "rb") as fh:
            self.signing_cert_pem = fh.read()
        self.signing_cert_der = xmlsec_cert_der(self.signing_cert_pem)
        self.last = {}

    def apply(self, envelope, headers):
        soap_env = zsig.detect_soap_env(envelope)
        header = get_or_create_header(envelope)
        security = get_security_header(envelope)
        security.set(QName(soap_env, "mustUnderstand"), "1")
        now = datetime.datetime.now(datetime.timezone.utc)
        timestamp = WSU.Timestamp(WSU.Created(xsd_time(now)), WSU.Expires(xsd_time(now + datetime.timedelta(minutes=5))))
        security.append(timestamp)

        key = zsig._make_sign_key(self.key_data, self.cert_data, self.password)
        signature = xmlsec.template.create(envelope, xmlsec.Transform.EXCL_C14N, xmlsec.Transform.RSA_SHA1)
        key_info = xmlsec.template.ensure_key_info(signature)
        x509_data = xmlsec.template.add_x509_data(key_info)
        xmlsec.template.x509_data_add_certificate(x509_data)
        security.insert(0, signature)

        ctx = xmlsec.SignatureContext()
        ctx.key = key
        # Every header but Security itself ("OnlySignEntireHeadersAndBody"): the
        # WS-Addressing ones, and whatever else a test put there.
        targets = [envelope.find(QName(soap_env, "Body")), timestamp]
        targets += [h for h in elements(header) if h is not security]
        for target in targets:
            zsig._sign_node(ctx, signature, target, xmlsec.Transform.SHA1)
        ctx.sign(signature)

        # Like zeep: move the certificate xmlsec filled in into a BinarySecurityToken.
        str_el = etree.SubElement(key_info, QName(NS_WSSE, "SecurityTokenReference"))
        ref = etree.SubElement(str_el, QName(NS_WSSE, "Reference"),
                               {"ValueType": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3"})
        token = etree.Element(QName(NS_WSSE, "BinarySecurityToken"), {
            "ValueType": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3",
            "EncodingType": "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary",
        })
        ref.set("URI", "#" + zsig.ensure_id(token))
        token.text = x509_data.find(QName(NS_DS, "X509Certificate")).text
        security.insert(1, token)
        key_info.remove(x509_data)
        return envelope, headers

    def verify(self, envelope):
        self.last = verify_response(envelope, self.signing_cert_pem, self.signing_cert_der)
        if self.last.get("error"):
            raise SignatureVerificationFailed(self.last["error"])
        return envelope


def xmlsec_cert_der(pem):
    body = b"".join(line for line in pem.splitlines() if line and not line.startswith(b"-----"))
    return base64.b64decode(body)


def verify_response(envelope, signing_cert_pem, signing_cert_der):
    """Checks a signed answer: xmlsec verifies the signature value and every digest
    with the signing certificate's key (zeep's _verify_envelope_with_key); then what
    xmlsec does not check: that Body, Timestamp and every header are among the signed
    references, that the token in the message is the signing certificate, and that the
    Timestamp is current. Faults carry no signature (NOTES.md) and are recorded as such."""
    rec = {"signed": False, "verified": False, "error": ""}
    body = envelope.find(QName(NS_SOAP, "Body"))
    if body is not None and body.find(QName(NS_SOAP, "Fault")) is not None:
        rec["fault"] = True
        rec["signed"] = envelope.find(f".//{{{NS_DS}}}Signature") is not None
        return rec
    header = envelope.find(QName(NS_SOAP, "Header"))
    security = header.find(QName(NS_WSSE, "Security")) if header is not None else None
    signature = security.find(QName(NS_DS, "Signature")) if security is not None else None
    if signature is None:
        rec["error"] = "answer is not signed"
        return rec
    rec["signed"] = True
    try:
        zsig._verify_envelope_with_key(envelope, zsig._make_verify_key(signing_cert_pem))
    except (SignatureVerificationFailed, xmlsec.Error, IndexError) as exc:
        rec["error"] = f"xmlsec: signature does not verify with the signing certificate ({type(exc).__name__})"
        return rec
    refs = {r.get("URI", "")[1:] for r in signature.iterfind(f"{{{NS_DS}}}SignedInfo/{{{NS_DS}}}Reference")}
    must = [body, security.find(QName(NS_WSU, "Timestamp"))] + [h for h in elements(header) if h is not security]
    for el in must:
        if el is None:
            rec["error"] = "no wsu:Timestamp in the Security header"
            return rec
        if el.get(QName(NS_WSU, "Id")) not in refs:
            rec["error"] = f"{local(el)} is not signed"
            return rec
    tokens = security.findall(QName(NS_WSSE, "BinarySecurityToken"))
    if len(tokens) != 1 or base64.b64decode("".join(tokens[0].text.split())) != signing_cert_der:
        rec["error"] = "the BinarySecurityToken is not the signing certificate"
        return rec
    ts = security.find(QName(NS_WSU, "Timestamp"))
    now = datetime.datetime.now(datetime.timezone.utc)
    created = parse_time(ts.findtext(QName(NS_WSU, "Created")))
    expires_text = ts.findtext(QName(NS_WSU, "Expires"))
    if created is None or created > now + datetime.timedelta(minutes=5):
        rec["error"] = f"Timestamp Created {ts.findtext(QName(NS_WSU, 'Created'))!r} is missing or in the future"
        return rec
    if expires_text is not None and (parse_time(expires_text) is None or parse_time(expires_text) < now):
        rec["error"] = f"Timestamp Expires {expires_text!r} is invalid or past"
        return rec
    rec["verified"] = True
    return rec


def parse_time(text):
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_file(path):
    with open(path, "rb") as fh:
        return etree.fromstring(fh.read(), etree.XMLParser(resolve_entities=False))


def wsdl_operations(path):
    """Per operation of the WSDL's portType: the wsaw:Action of its output and its fault
    (what the answers' wsa:Action must be) and the element of its output message (what
    the answer's Body must hold)."""
    doc = parse_file(path)

    def message_element(msg_ref, ctx):
        name = QName(resolve(msg_ref, ctx)).localname
        part = doc.find(f"{{{NS_WSDL}}}message[@name='{name}']/{{{NS_WSDL}}}part")
        return resolve(part.get("element"), part)

    out = {}
    for op in doc.iterfind(f"{{{NS_WSDL}}}portType/{{{NS_WSDL}}}operation"):
        output, fault = op.find(f"{{{NS_WSDL}}}output"), op.find(f"{{{NS_WSDL}}}fault")
        out[op.get("name")] = {
            "output": output.get(QName(NS_WSAW, "Action")),
            "fault": fault.get(QName(NS_WSAW, "Action")),
            "output_element": message_element(output.get("message"), output),
        }
    return out


def resolve(prefixed, ctx):
    """A prefix:name attribute value as {namespace}name, with ctx's namespaces."""
    prefix, _, name = prefixed.rpartition(":")
    return QName(ctx.nsmap[prefix or None], name).text


class Service:
    """One WUS service: a zeep client built from its WSDL, bound to the endpoint."""

    def __init__(self, key, url, args, session, schema):
        wsdl_file, self.fault_elem = SERVICES[key]
        self.key = key
        self.url = url
        self.schema = schema
        self.wsdl = wsdl_operations(os.path.join(args.spec_dir, wsdl_file))
        self.transport = SpecTransport(args.spec_dir, session)
        self.signer = WusSignature(args.key, args.cert, args.signing_cert)
        self.client = zeep.Client(
            os.path.join(args.spec_dir, wsdl_file),
            transport=self.transport,
            wsse=self.signer,
            # The WSDLs give no wsaw:Action on the inputs, so zeep adds no addressing
            # by itself; its plugin then takes the action from the soapAction. wsa:To
            # is the endpoint called, not the WSDL's (Logius' conformance) address.
            plugins=[WsAddressingPlugin(address_url=url)],
            settings=zeep.Settings(strict=True, xml_huge_tree=True),
        )
        binding = next(iter(self.client.wsdl.bindings))
        self.proxy = self.client.create_service(binding, url)

    def call(self, op, label, expect=(), collect="kenmerk", **kwargs):
        """One well-formed call; the record says whether it succeeded end to end."""
        rec = {"service": self.key, "op": op, "label": label, "ok": False, "error": "", "verified": False,
               "xsd_valid": False, "element_ok": False, "zeep_parsed": False, "action_ok": False, "relates_to_ok": False,
               "results": 0, "found": [], "missing": []}
        self.signer.last = {}
        self.transport.last_request = self.transport.last_response = None
        started = time.monotonic()
        try:
            result = getattr(self.proxy, op)(**kwargs)
            rec["zeep_parsed"] = True
        except Fault as exc:
            rec["error"] = f"fault {exc.code}: {fault_text(exc.detail)}"
            result = None
        except Exception as exc:  # noqa: BLE001 - every failure goes into the report
            rec["error"] = f"{type(exc).__name__}: {exc}"
            result = None
        rec["ms"] = round((time.monotonic() - started) * 1000)
        rec["verified"] = bool(self.signer.last.get("verified"))
        if self.signer.last.get("error") and not rec["error"]:
            rec["error"] = self.signer.last["error"]
        resp = self.transport.last_response
        values = {}
        if resp is not None and resp.content:
            values = self.inspect(op, rec, resp)
        if rec["zeep_parsed"]:
            rec["found"] = values.get(collect, [])
            rec["missing"] = [e for e in expect if e not in rec["found"]]
        rec["ok"] = all(rec[k] for k in ("zeep_parsed", "verified", "xsd_valid", "element_ok", "action_ok", "relates_to_ok")) and not rec["error"]
        return rec, result, values

    def inspect(self, op, rec, resp):
        """The explicit checks on the raw answer: XSD validation of the Body payload with
        lxml, wsa:Action against the WSDL, wsa:RelatesTo against our MessageID. Returns
        the texts of the payload's leaf elements by name."""
        values = {}
        try:
            doc = etree.fromstring(resp.content, etree.XMLParser(resolve_entities=False, huge_tree=True))
        except etree.XMLSyntaxError as exc:
            rec["error"] = rec["error"] or f"answer is not XML: {exc}"
            return values
        body = doc.find(QName(NS_SOAP, "Body"))
        payload = elements(body)[0] if body is not None and elements(body) else None
        if payload is None or QName(payload).namespace == NS_SOAP:
            return values
        ok, errors = validate(self.schema, payload)
        rec["xsd_valid"] = ok
        if not ok:
            rec["xsd_errors"] = errors
        rec["payload"] = local(payload)
        # The XSD accepts any of its global elements; the WSDL says which one this is.
        rec["element_ok"] = QName(payload).text == self.wsdl[op]["output_element"]
        ret = elements(payload)[0] if elements(payload) else None
        rec["results"] = len(elements(ret)) if ret is not None and local(ret).endswith("Return") else 1
        for el in payload.iter():
            if isinstance(el.tag, str) and QName(el).namespace == NS_KV and not elements(el):
                values.setdefault(local(el), []).append((el.text or "").strip())
        action = doc.findtext(f"{{{NS_SOAP}}}Header/{{{NS_WSA}}}Action")
        rec["action_ok"] = action == self.wsdl[op]["output"]
        if not rec["action_ok"]:
            rec["action"] = action
        sent = etree.fromstring(self.transport.last_request).findtext(f"{{{NS_SOAP}}}Header/{{{NS_WSA}}}MessageID")
        rec["relates_to_ok"] = bool(sent) and doc.findtext(f"{{{NS_SOAP}}}Header/{{{NS_WSA}}}RelatesTo") == sent
        return values

    def send_mutated(self, op, name, mutate, **kwargs):
        """Builds the request with zeep (addressing included, no signature), applies
        mutate(envelope, payload), then signs it like every other request, so that the
        signature is valid and only the mutation is wrong, and posts it."""
        rec = {"service": self.key, "op": op, "case": name, "http_status": 0, "fault": False, "faultcode": "",
               "foutcode": "", "foutbeschrijving": "", "detail_valid": False, "fault_action_ok": False, "relates_to_ok": False,
               "signed": False, "error": ""}
        try:
            wsse, self.client.wsse = self.client.wsse, None
            try:
                envelope = self.client.create_message(self.proxy, op, **kwargs)
            finally:
                self.client.wsse = wsse
            payload = elements(envelope.find(QName(NS_SOAP, "Body")))[0]
            mutate(envelope, payload)
            envelope, _ = self.signer.apply(envelope, {})
            soap_action = self.client.wsdl.bindings[next(iter(self.client.wsdl.bindings))].get(op).soapaction
            resp = self.transport.post(self.url, etree.tostring(envelope, xml_declaration=True, encoding="utf-8"),
                                       {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{soap_action}"'})
        except Exception as exc:  # noqa: BLE001
            rec["error"] = f"{type(exc).__name__}: {exc}"
            return rec
        rec["http_status"] = resp.status_code
        try:
            doc = etree.fromstring(resp.content, etree.XMLParser(resolve_entities=False))
        except etree.XMLSyntaxError as exc:
            rec["error"] = f"answer is not XML: {exc}"
            return rec
        fault = doc.find(f"{{{NS_SOAP}}}Body/{{{NS_SOAP}}}Fault")
        if fault is None:
            return rec
        rec["fault"] = True
        rec["faultcode"] = (fault.findtext("faultcode") or "").strip()
        detail = fault.find("detail")
        d = elements(detail)[0] if detail is not None and elements(detail) else None
        if d is not None:
            rec["detail"] = local(d)
            rec["foutcode"] = (d.findtext(QName(NS_KV, "foutcode")) or "").strip()
            rec["foutbeschrijving"] = " ".join((d.findtext(QName(NS_KV, "foutbeschrijving")) or "").split())
            ok, errors = validate(self.schema, d)
            rec["detail_valid"] = ok and local(d) == self.fault_elem
            if errors:
                rec["xsd_errors"] = errors
        action = doc.findtext(f"{{{NS_SOAP}}}Header/{{{NS_WSA}}}Action")
        rec["fault_action_ok"] = action == self.wsdl[op]["fault"]
        if not rec["fault_action_ok"]:
            rec["fault_action"] = action
        sent = envelope.findtext(f"{{{NS_SOAP}}}Header/{{{NS_WSA}}}MessageID")
        rec["relates_to_ok"] = bool(sent) and doc.findtext(f"{{{NS_SOAP}}}Header/{{{NS_WSA}}}RelatesTo") == sent
        rec["signed"] = doc.find(f".//{{{NS_DS}}}Signature") is not None
        return rec


def validate(schema, el):
    """Validates one element (the Body payload or a fault detail) against the XSD; it is
    serialised on its own first so that it carries its in-scope namespaces."""
    standalone = etree.fromstring(etree.tostring(el))
    if schema.validate(standalone):
        return True, []
    return False, [f"line {e.line}: {e.message}" for e in schema.error_log][:5]


def fault_text(detail):
    if detail is None:
        return ""
    return " ".join(" ".join(detail.itertext()).split())[:300]


# Mutations of a request. Each breaks one rule of the koppelvlak and nothing else.
def without_namespace(envelope, payload):
    for el in payload.iter():
        if isinstance(el.tag, str):
            el.tag = local(el)
    etree.cleanup_namespaces(envelope)


def children_unqualified(envelope, payload):
    for el in payload.iter():
        if el is not payload and isinstance(el.tag, str):
            el.tag = local(el)


def out_of_order(envelope, payload):
    first = elements(payload)[0]
    payload.remove(first)
    payload.append(first)


def unknown_element(envelope, payload):
    etree.SubElement(payload, QName(NS_KV, "onbekendElement")).text = "interop"


def no_autorisatie_adres(envelope, payload):
    for el in payload.findall(QName(NS_KV, "autorisatieAdres")):
        payload.remove(el)


def custom_header(envelope, payload):
    header = get_or_create_header(envelope)
    etree.SubElement(header, QName("urn:koerier:interop", "Trace"), nsmap={"trace": "urn:koerier:interop"}).text = "interop"


def unchanged(envelope, payload):
    pass


MUTATIONS = [
    ("control", unchanged),
    ("payload-without-namespace", without_namespace),
    ("children-unqualified", children_unqualified),
    ("out-of-order", out_of_order),
    ("unknown-element", unknown_element),
    ("no-autorisatieAdres", no_autorisatie_adres),
    ("custom-soap-header", custom_header),
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("aanlever-url", "status-url", "ophaal-url", "cert", "key", "ca", "signing-cert", "spec-dir", "xbrl"):
        ap.add_argument("--" + name, required=True)
    ap.add_argument("--wait", type=float, default=20, help="seconds to wait for the flows to end")
    args = ap.parse_args()

    session = requests.Session()
    # Not the environment: requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override
    # session.verify, and proxy variables have no business on a loopback test.
    session.trust_env = False
    session.cert = (args.cert, args.key)
    session.verify = args.ca
    schema = etree.XMLSchema(parse_file(os.path.join(args.spec_dir, XSD_NAME)))
    # The explicit validation must be able to fail: an aanleverResponse without its
    # required kenmerk is refused, or the schema is not what the checks need.
    probe = etree.fromstring(f'<aanleverResponse xmlns="{NS_KV}"><berichtsoort>x</berichtsoort></aanleverResponse>')
    if validate(schema, probe)[0]:
        raise SystemExit(f"interop.py: {XSD_NAME} accepts an aanleverResponse without kenmerk: not Logius' XSD?")
    aan = Service("aanleverservice", args.aanlever_url, args, session, schema)
    sts = Service("statusinformatieservice", args.status_url, args, session, schema)
    oph = Service("ophaalservice", args.ophaal_url, args, session, schema)
    with open(args.xbrl, "rb") as fh:
        xbrl = fh.read()

    report = {"zeep": zeep.__version__, "xmlsec": getattr(xmlsec, "__version__", ""), "operations": [], "malformed": []}
    ops = report["operations"]
    run = uuid.uuid4().hex[:8]
    berichtsoort = "Omzetbelasting"
    # Three deliveries with their own belanghebbende, so that each "nieuwe" pickup call
    # has a message of its own to return: a message fetched by one of them is not new
    # for the next.
    ids = {n: {"nummer": nr, "type": "Fi"} for n, nr in (("A", "001000044B37"), ("B", "001000044B38"), ("C", "001000044B39"))}

    def deliver(who, aanleverkenmerk, label):
        rec, res, _ = aan.call("aanleveren", label, expect=[aanleverkenmerk], collect="aanleverkenmerk",
                            berichtsoort=berichtsoort, aanleverkenmerk=aanleverkenmerk,
                            identiteitBelanghebbende=ids[who], rolBelanghebbende="Bedrijf",
                            berichtInhoud={"mimeType": "text/xml", "bestandsnaam": "Omzetbelasting.xbrl", "inhoud": xbrl},
                            autorisatieAdres=AUTORISATIE_ADRES)
        ops.append(rec)
        return res.kenmerk if res is not None else None

    kenmerk = {who: deliver(who, f"interop-{run}-{who}", f"aanleveren {who}") for who in ids}
    if not all(kenmerk.values()):
        print(json.dumps(report, indent=1))
        return

    # Wait until every flow has ended (status 500) and its reply is ready for pickup.
    deadline = time.monotonic() + args.wait
    polls = 0
    for who, k in kenmerk.items():
        while True:
            rec, _, values = sts.call("getStatussenProces", f"getStatussenProces {who}", expect=[k],
                                      kenmerk=k, autorisatieAdres=AUTORISATIE_ADRES)
            polls += 1
            codes = values.get("statuscode", [])
            if not rec["ok"] or (codes and codes[-1] == "500") or time.monotonic() > deadline:
                rec["statuscodes"] = codes
                ops.append(rec)
                break
            time.sleep(0.05)
    report["status_polls"] = polls

    def add(svc, op, label, expect=(), collect="kenmerk", **kw):
        rec, _, _ = svc.call(op, label, expect=expect, collect=collect, autorisatieAdres=AUTORISATIE_ADRES, **kw)
        ops.append(rec)

    kA, kB, kC = kenmerk["A"], kenmerk["B"], kenmerk["C"]
    add(sts, "getNieuweStatussenProces", "getNieuweStatussenProces A", [kA], kenmerk=kA)
    add(sts, "getNieuweStatussen", "getNieuweStatussen B", [kB], berichtsoort=berichtsoort, identiteitBelanghebbende=ids["B"])
    add(sts, "getBerichtsoorten", "getBerichtsoorten A", [berichtsoort], collect="berichtsoort", identiteitBelanghebbende=ids["A"])
    add(sts, "getProcessen", "getProcessen A", [kA], berichtsoort=berichtsoort, identiteitBelanghebbende=ids["A"])
    add(oph, "getBerichtenLijst", "getBerichtenLijst", [kA, kB, kC], berichtsoort=berichtsoort)
    add(oph, "getBerichtenKenmerk", "getBerichtenKenmerk A", [kA], kenmerk=kA)
    add(oph, "getBerichten", "getBerichten A", [kA], berichtsoort=berichtsoort, identiteitBelanghebbende=ids["A"])
    add(oph, "getNieuweBerichtenKenmerk", "getNieuweBerichtenKenmerk A", [kA], kenmerk=kA)
    add(oph, "getNieuweBerichten", "getNieuweBerichten B", [kB], berichtsoort=berichtsoort, identiteitBelanghebbende=ids["B"])
    add(oph, "getNieuweBerichtenLijst", "getNieuweBerichtenLijst (C)", [kC], berichtsoort=berichtsoort)

    for name, mutate in MUTATIONS:
        report["malformed"].append(aan.send_mutated(
            "aanleveren", name, mutate, berichtsoort=berichtsoort, aanleverkenmerk=f"interop-{run}-{name}"[:40],
            identiteitBelanghebbende=ids["A"], rolBelanghebbende="Bedrijf",
            berichtInhoud={"mimeType": "text/xml", "bestandsnaam": "Omzetbelasting.xbrl", "inhoud": xbrl},
            autorisatieAdres=AUTORISATIE_ADRES))
        report["malformed"].append(sts.send_mutated("getStatussenProces", name, mutate, kenmerk=kA, autorisatieAdres=AUTORISATIE_ADRES))
        report["malformed"].append(oph.send_mutated("getBerichtenKenmerk", name, mutate, kenmerk=kA, autorisatieAdres=AUTORISATIE_ADRES))

    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    try:
        main()
    except Exception:  # noqa: BLE001 - a setup failure: say where
        traceback.print_exc()
        sys.exit(2)
