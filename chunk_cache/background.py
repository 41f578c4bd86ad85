"""Background context for chunk prefill: a fixed stretch of unrelated passages.

A chunk is prefilled on its own, so its tokens attend to the shared prefix and to each other
only; inside a long RAG prompt the same tokens also attend to the passages before them. Part of
that difference is generic: attention spread over a long context rather than a short one.
Prefilling every chunk after the shared prefix *and* this background brings its stored KV
closer to the KV it would have in the middle of a long prompt, which lowers the error that
selective recomputation has to repair (docs/decisions.md, "Background context for chunk
prefill"). The background itself is never part of a fused prompt; the chunk keys are
re-rotated from their stored positions as usual.

``BUILTIN_PASSAGES`` are ten short encyclopedic paragraphs on unrelated subjects, written for
this purpose; ``[blend] background`` may name a text file instead, or ``"none"``.
"""

from __future__ import annotations

from pathlib import Path

from blendcache.chunk_cache.layout import format_document
from blendcache.errors import ConfigError
from blendcache.recompute.model import Engine

BUILTIN_PASSAGES: tuple[tuple[str, str], ...] = (
    ('River delta',
        'A river delta is a landform that forms where a river meets a slower body of water, '
        'such as a lake or the sea, and drops the sediment it has carried downstream. Over '
        'centuries the deposits build up into a fan of channels, marshes and low islands. '
        'Deltas are among the most fertile places on Earth, and many early farming settlements '
        'grew up on them. They are also fragile: dams upstream trap sediment, and rising sea '
        'levels can drown the lowest ground.'),
    ('Printing press',
        'The movable-type printing press spread across Europe in the second half of the '
        'fifteenth century. A printer set individual metal letters in a frame, inked them and '
        'pressed paper against them, so that hundreds of identical copies could be made in the '
        'time a scribe needed for one. Books became cheaper, spelling became more uniform, and '
        'ideas travelled faster between cities. Within a few decades printing shops operated in '
        'most large towns of the continent.'),
    ('Honey bee',
        'The honey bee is a social insect that lives in colonies of several thousand workers, a '
        'few hundred males and a single queen. Workers collect nectar and pollen from flowers, '
        'and in doing so they pollinate many crops and wild plants. Nectar is stored in wax '
        'cells and slowly turned into honey as water evaporates from it. A colony can survive '
        'the winter by clustering together and living on its stored honey.'),
    ('Suspension bridge',
        'A suspension bridge carries its deck on vertical hangers that hang from main cables. '
        'The cables pass over tall towers and are anchored in massive blocks of concrete or '
        'rock at each end. Because the cables work in tension, the design can span much greater '
        'distances than a beam or arch bridge of the same weight. Engineers must take care with '
        'wind, since a light and flexible deck can twist or sway if its shape is poorly chosen.'),
    ('Tea',
        'Tea is a drink made by pouring hot water over the cured leaves of the tea plant, an '
        'evergreen shrub first cultivated in East Asia. Green, black and oolong teas come from '
        'the same plant; they differ in how long the leaves are allowed to oxidise before they '
        'are dried. Tea reached Europe through trade in the seventeenth century and became a '
        'popular everyday drink. Today it is grown in many tropical and subtropical countries.'),
    ('Volcano',
        'A volcano is an opening in the crust of a planet through which molten rock, ash and '
        'gases escape. Most volcanoes lie along the edges of tectonic plates, where plates pull '
        'apart or where one slides beneath another. Some erupt gently, pouring out runny lava, '
        'while others explode violently because their thick magma traps gas. Volcanic soils are '
        'often rich, so people farm on the slopes of volcanoes despite the danger.'),
    ('Chess',
        'Chess is a board game for two players, each commanding sixteen pieces on a board of '
        'sixty-four squares. The aim is to checkmate the opposing king, trapping it so that it '
        'cannot escape capture. The modern rules took shape in southern Europe around the end '
        'of the fifteenth century, when the queen and bishop gained their long moves. '
        'International tournaments have been held since the nineteenth century, and computer '
        'programs now play far better than any human.'),
    ('Lighthouse',
        'A lighthouse is a tower with a bright lamp and lenses at the top, built to guide ships '
        'at night and warn them away from rocks and shallow water. Each lighthouse has its own '
        'pattern of flashes, so that sailors can tell which one they are looking at. Early '
        'lights burned wood, coal or oil; later ones used electric lamps and rotating lenses '
        'that could be seen many miles away. Many lighthouses are now automated and run without '
        'keepers.'),
    ('Glacier',
        'A glacier is a large, slow-moving mass of ice formed from snow that has piled up and '
        'compressed over many years. Under its own weight the ice flows downhill, scraping the '
        'rock beneath it and carving deep valleys. When glaciers melt back they leave behind '
        'lakes, ridges of gravel and boulders far from where they started. Glaciers store a '
        "large share of the world's fresh water, and their retreat is closely watched as a sign "
        'of climate change.'),
    ('Orchestra',
        'An orchestra is a large group of musicians playing together, usually divided into '
        'strings, woodwinds, brass and percussion. The strings form the largest section and '
        'often carry the main melody. A conductor keeps the players in time and shapes how '
        'loudly and expressively each passage is played. The symphony orchestra took its '
        'familiar form in the eighteenth and nineteenth centuries, as composers wrote longer '
        'works for more instruments.'),
)


def background_documents(spec: str) -> list[str]:
    """The background as documents: ``"builtin"``, ``"none"`` (empty), or a UTF-8 text file
    whose blank-line-separated blocks are the passages."""
    if spec == "none":
        return []
    if spec == "builtin":
        return [format_document(text, title) for title, text in BUILTIN_PASSAGES]
    try:
        text = Path(spec).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"blend.background: cannot read {spec!r}: {exc}") from exc
    blocks = [block.strip() for block in text.split("\n\n") if block.strip()]
    if not blocks:
        raise ConfigError(f"blend.background: {spec!r} holds no text")
    return [format_document(block) for block in blocks]


def background_ids(engine: Engine, spec: str) -> tuple[int, ...]:
    """Token ids of the background, each passage tokenised on its own like a chunk."""
    encode = engine.tokenizer.encode
    return tuple(t for doc in background_documents(spec) for t in encode(doc, add_special_tokens=False))
