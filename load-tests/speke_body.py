#!/usr/bin/env python3
"""Prints one SPEKE v2.0 request like load-tests/speke.lua sends (fresh contentId and KIDs).

Environment: KEYS (2 or 8), CERT_B64 (optional DeliveryKey certificate, base64 DER). Used by
run.sh to measure the response size for the reference endpoint, and handy with curl.
"""
import os
import uuid

keys = int(os.environ.get("KEYS", "2"))
cert = os.environ.get("CERT_B64") or None
tracks = {2: ["VIDEO", "AUDIO"],
          8: ["SD", "HD1", "HD2", "UHD1", "UHD2", "STEREO_AUDIO", "MULTICHANNEL_AUDIO_3_6",
              "MULTICHANNEL_AUDIO_7"]}[keys]
kids = [str(uuid.uuid4()) for _ in range(keys)]
systems = {"edef8ba9-79d6-4ace-a3c8-27dcd51d21ed": True, "9a04f079-9840-4286-ab92-e65be0885f95": True,
           "94ce86fb-07ff-4f43-adb8-93d2fa968ca2": False}
b = ['<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc" '
     f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" contentId="bench-{uuid.uuid4()}" version="2.3">']
if cert:
    b.append('<cpix:DeliveryDataList><cpix:DeliveryData id="bench"><cpix:DeliveryKey><ds:X509Data>'
             f'<ds:X509Certificate>{cert}</ds:X509Certificate></ds:X509Data></cpix:DeliveryKey>'
             '</cpix:DeliveryData></cpix:DeliveryDataList>')
b.append('<cpix:ContentKeyList>')
b += [f'<cpix:ContentKey kid="{k}" commonEncryptionScheme="cbcs"/>' for k in kids]
b.append('</cpix:ContentKeyList><cpix:DRMSystemList>')
for k in kids:
    for sid, pssh in systems.items():
        inner = '<cpix:PSSH/><cpix:ContentProtectionData/>' if pssh else ''
        b.append(f'<cpix:DRMSystem kid="{k}" systemId="{sid}">{inner}<cpix:HLSSignalingData playlist="media"/>'
                 '<cpix:HLSSignalingData playlist="master"/></cpix:DRMSystem>')
b.append('</cpix:DRMSystemList><cpix:ContentKeyUsageRuleList>')
for k, t in zip(kids, tracks):
    f = '<cpix:AudioFilter/>' if 'AUDIO' in t else '<cpix:VideoFilter/>'
    b.append(f'<cpix:ContentKeyUsageRule kid="{k}" intendedTrackType="{t}">{f}</cpix:ContentKeyUsageRule>')
b.append('</cpix:ContentKeyUsageRuleList></cpix:CPIX>')
print(''.join(b), end='')
