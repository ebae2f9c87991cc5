-- wrk script: POST /speke/v2 as a SPEKE v2.0 encryptor starting new content on every request:
-- a fresh contentId and fresh KIDs each time, so every request creates and stores its keys
-- (the expensive path; a repeated request would only read them back).
-- Environment: TOKEN (service token with keys:write and keys:read), KEYS (2 or 8),
-- CERT_B64 (optional: a DeliveryKey certificate, base64 DER, for encrypted delivery).

local keys = tonumber(os.getenv("KEYS") or "2")
local cert = os.getenv("CERT_B64")
if cert == "" then cert = nil end
local counter = 0
local tracks = {
  [2] = { "VIDEO", "AUDIO" },
  -- PRESET-VIDEO-5 with PRESET-AUDIO-3.
  [8] = { "SD", "HD1", "HD2", "UHD1", "UHD2", "STEREO_AUDIO", "MULTICHANNEL_AUDIO_3_6", "MULTICHANNEL_AUDIO_7" },
}
local WV = "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"
local PR = "9a04f079-9840-4286-ab92-e65be0885f95"
local FP = "94ce86fb-07ff-4f43-adb8-93d2fa968ca2"

local function hex4() return string.format("%04x", math.random(0, 0xffff)) end
local function uuid()
  return hex4() .. hex4() .. "-" .. hex4() .. "-4" .. string.sub(hex4(), 2) .. "-a" ..
    string.sub(hex4(), 2) .. "-" .. hex4() .. hex4() .. hex4()
end

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16))
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/xml"
  wrk.headers["X-Speke-Version"] = "2.0"
  wrk.headers["Authorization"] = "Bearer " .. os.getenv("TOKEN")
end

function request()
  counter = counter + 1
  local kids = {}
  for i = 1, keys do kids[i] = uuid() end
  local b = { '<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc" ',
    'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" contentId="bench-', uuid(), '" version="2.3">' }
  if cert then
    b[#b + 1] = '<cpix:DeliveryDataList><cpix:DeliveryData id="bench"><cpix:DeliveryKey><ds:X509Data><ds:X509Certificate>' ..
      cert .. '</ds:X509Certificate></ds:X509Data></cpix:DeliveryKey></cpix:DeliveryData></cpix:DeliveryDataList>'
  end
  b[#b + 1] = '<cpix:ContentKeyList>'
  for _, k in ipairs(kids) do
    b[#b + 1] = '<cpix:ContentKey kid="' .. k .. '" commonEncryptionScheme="cbcs"/>'
  end
  b[#b + 1] = '</cpix:ContentKeyList><cpix:DRMSystemList>'
  for _, k in ipairs(kids) do
    b[#b + 1] = '<cpix:DRMSystem kid="' .. k .. '" systemId="' .. WV .. '"><cpix:PSSH/><cpix:ContentProtectionData/>' ..
      '<cpix:HLSSignalingData playlist="media"/><cpix:HLSSignalingData playlist="master"/></cpix:DRMSystem>'
    b[#b + 1] = '<cpix:DRMSystem kid="' .. k .. '" systemId="' .. PR .. '"><cpix:PSSH/><cpix:ContentProtectionData/>' ..
      '<cpix:HLSSignalingData playlist="media"/><cpix:HLSSignalingData playlist="master"/></cpix:DRMSystem>'
    b[#b + 1] = '<cpix:DRMSystem kid="' .. k .. '" systemId="' .. FP .. '">' ..
      '<cpix:HLSSignalingData playlist="media"/><cpix:HLSSignalingData playlist="master"/></cpix:DRMSystem>'
  end
  b[#b + 1] = '</cpix:DRMSystemList><cpix:ContentKeyUsageRuleList>'
  for i, k in ipairs(kids) do
    local t = tracks[keys][i]
    local filter = (string.find(t, "AUDIO") and '<cpix:AudioFilter/>') or '<cpix:VideoFilter/>'
    b[#b + 1] = '<cpix:ContentKeyUsageRule kid="' .. k .. '" intendedTrackType="' .. t .. '">' .. filter .. '</cpix:ContentKeyUsageRule>'
  end
  b[#b + 1] = '</cpix:ContentKeyUsageRuleList></cpix:CPIX>'
  return wrk.format(nil, nil, nil, table.concat(b))
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d errors=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
