-- Net helpers, prepended to every net script after the platform prelude.

-- JSON that keeps empty arrays: cjson cannot tell [] from {}, so empty
-- arrays travel through decode/encode as a sentinel.
local EMPTY = '[-1.2345e-300]'
local function jdecode(s) return cjson.decode((string.gsub(s, '%[%s*%]', EMPTY))) end
local function jencode(v) return (string.gsub(cjson.encode(v), '%[%-1%.2345e%-300%]', '[]')) end
local function num(v) if v == nil or v == cjson.null then return 'null' end return tostring(v) end

-- A colour group as stored (and sent in callbacks): idx, begin, end, parent
-- colour and its group, colour and begin lineages.
local function group_json(g)
  return '{"idx":' .. num(g.idx) .. ',"begin":' .. num(g.b) .. ',"end":' .. num(g.e) ..
    ',"parent_color":' .. num(g.pc) .. ',"parent_color_group_idx":' .. num(g.pg) ..
    ',"color_lineage":' .. json_list(g.cl) .. ',"begin_lineage":' .. json_list(g.bl) .. '}'
end

