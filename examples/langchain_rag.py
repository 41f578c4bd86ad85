"""An offline RAG chain in LangChain against a blendcache server, run twice.

    blendcache serve &                     # in another shell
    python examples/langchain_rag.py --url http://127.0.0.1:8000

The chain is plain LCEL: ``{"context": retriever | format_documents, "question": ...} | prompt
| ChatBlendCache``. Each question is followed by a second, different one over the same
documents: its answer fuses the documents' stored chunk KVs (``blend``). The second run asks
everything again and is answered from the semantic cache (``semantic-hit``). Each answer is
printed with its cache outcome.

The corpus is a JSON list of records ``{question, ctxs: [{title, text}]}`` (HotpotQA's shape);
by default a few records of ../shared/data/rag/hotpotqa_distractor_100.json, from its odd
positions (the project designs on the even half and reports the odd one). The retriever is a
keyword retriever in a few lines: it picks the record whose passages share the most words with
the question and returns its first ``--top-k`` passages.
"""

import argparse
import json
import re
import sys
from pathlib import Path

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnablePassthrough

from blendcache.client.langchain import ChatBlendCache, format_documents

REPO = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
HOTPOT = Path("rag") / "hotpotqa_distractor_100.json"
# {context} opens the human message: blendcache puts documents there, so the model sees the
# prompt as written.
PROMPT = ChatPromptTemplate.from_messages([
    ("system", "Answer the question from the passages, in a few words."),
    ("human", "{context}Question: {question}"),
])


def words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if len(w) > 2}


class KeywordRetriever(BaseRetriever):
    """The passages of the topic (a record's passages) that shares the most words with the
    query, each word weighted by 1 / the number of topics that have it (an IDF of sorts)."""

    topics: list[list[Document]]
    top_k: int = 4

    def _get_relevant_documents(self, query: str, *,
                                run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        vocabularies = [words(" ".join(p.page_content for p in t)) for t in self.topics]
        asked = words(query)

        def score(vocabulary: set[str]) -> float:
            return sum(1 / sum(w in v for v in vocabularies) for w in asked & vocabulary)

        best = max(range(len(self.topics)), key=lambda i: score(vocabularies[i]))
        return self.topics[best][:self.top_k]


def load_corpus(path: Path, records: int) -> tuple[list[list[Document]], list[str]]:
    """The passages of ``records`` records at odd positions, and their questions."""
    data = json.loads(path.read_text(encoding="utf-8"))
    chosen = data[1::2][:records]
    topics = [[Document(page_content=f"{c['title']}\n{c['text']}", metadata={"title": c["title"]})
               for c in record["ctxs"]] for record in chosen]
    return topics, [record["question"] for record in chosen]


def follow_up(passages: list[Document]) -> str:
    """A second, different question over the same passages: about the last one's subject
    (the retriever finds the topic by its title; the semantic cache does not take it for the
    first question)."""
    return f"What do the passages say about {passages[-1].metadata['title']}?"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the blendcache server")
    parser.add_argument("--api-key", default=None, help="a tenant's API key, if the server has")
    parser.add_argument("--corpus", type=Path, default=None,
                        help=f"records as JSON (default: DATA_DIR/{HOTPOT})")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="the shared data folder (default: ../shared/data beside the repo)")
    parser.add_argument("--records", type=int, default=2, help="records to ask about")
    parser.add_argument("--top-k", type=int, default=4, help="passages per question")
    parser.add_argument("--max-tokens", type=int, default=24)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    corpus = args.corpus or args.data_dir / HOTPOT
    if not corpus.exists():
        print(f"no corpus at {corpus}: pass --corpus FILE or --data-dir", file=sys.stderr)
        return 2
    topics, questions = load_corpus(corpus, args.records)
    retriever = KeywordRetriever(topics=topics, top_k=args.top_k)
    llm = ChatBlendCache(base_url=args.url, api_key=args.api_key, max_tokens=args.max_tokens)
    chain = ({"context": retriever | format_documents, "question": RunnablePassthrough()}
             | PROMPT | llm)
    asked = [q for question, topic in zip(questions, topics)
             for q in (question, follow_up(topic[:args.top_k]))]
    outcomes = {}
    for run in (1, 2):
        print(f"== run {run}")
        for question in asked:
            answer = chain.invoke(question)
            info = answer.response_metadata["blendcache"]
            outcomes[run, question] = info["outcome"]
            reused = (f", chunks reused {info['chunks_reused']}/{info['chunks_total']}"
                      if info["chunks_total"] else "")
            print(f"[{info['outcome']}{reused}, ttft {info['ttft_ms']} ms] {question}\n"
                  f"    -> {answer.content.strip()!r}")
    hits = sum(outcomes[2, q] == "semantic-hit" for q in asked)
    blends = sum(outcomes[1, q] == "blend" for q in asked[1::2])
    print(f"== run 2: {hits}/{len(asked)} answered from the semantic cache; run 1: "
          f"{blends}/{len(asked) // 2} follow-up questions over the same documents blended")
    return 0


if __name__ == "__main__":
    sys.exit(main())
